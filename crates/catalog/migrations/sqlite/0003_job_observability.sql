-- What the operator's logs and metrics need of a job: the request that created the image (its
-- import's log lines carry the create's request id, on whichever replica runs it), and the
-- worker whose expired lease a claim took over (counted as a lease takeover).
ALTER TABLE import_jobs ADD COLUMN request_id TEXT;
ALTER TABLE import_jobs ADD COLUMN taken_over_from TEXT;
