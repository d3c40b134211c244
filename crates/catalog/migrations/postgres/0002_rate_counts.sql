-- Requests per rate-limit key and minute, summed over every replica (see http/rate_limit.rs).
CREATE TABLE rate_counts (
    key    TEXT NOT NULL,
    minute BIGINT NOT NULL,
    count  BIGINT NOT NULL,
    PRIMARY KEY (key, minute)
);
CREATE INDEX rate_counts_minute ON rate_counts(minute);
