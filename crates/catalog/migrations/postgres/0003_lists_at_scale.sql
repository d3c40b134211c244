-- Lists over millions of images (issue #6); how they are queried is in catalog/postgres.rs.

-- What a viewer may list is the public images plus its own private ones: two disjoint parts, each
-- with an index in id order, so that a page walks both and stops after the page. `public OR
-- owner_id = …` in one query left the planner a choice between sorting every visible image and
-- walking the primary key past other accounts' images.
CREATE INDEX images_public ON images(id) WHERE public AND status NOT IN ('deleted', 'retired');
CREATE INDEX images_private ON images(owner_id, id) WHERE NOT public AND status NOT IN ('deleted', 'retired');
-- It also held the few public images an account owns, which images_public now covers.
DROP INDEX images_owner;

-- A tag list walks the index of (owner, tag, image) for the viewer's images: walking the tag's
-- images would pass every other account's, walking the viewer's would pass all of its images
-- without the tag. So image_tags keeps its image's owner, looked up from the image unless the
-- writer gives it (a bulk load does: a trigger call per row would double its time). Owners do
-- not change; if one did, its tags follow.
ALTER TABLE image_tags ADD COLUMN owner_id BIGINT;
UPDATE image_tags AS t SET owner_id = i.owner_id FROM images AS i WHERE i.id = t.image_id AND i.owner_id IS NOT NULL;
CREATE INDEX image_tags_owner ON image_tags(owner_id, tag, image_id) WHERE owner_id IS NOT NULL;

CREATE FUNCTION image_tags_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.owner_id := (SELECT owner_id FROM images WHERE id = NEW.image_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER image_tags_owner BEFORE INSERT ON image_tags
    FOR EACH ROW WHEN (NEW.owner_id IS NULL) EXECUTE FUNCTION image_tags_owner();

CREATE FUNCTION images_owner_to_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE image_tags SET owner_id = NEW.owner_id WHERE image_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER images_owner_to_tags AFTER UPDATE OF owner_id ON images
    FOR EACH ROW WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id) EXECUTE FUNCTION images_owner_to_tags();

-- List totals are counted once per filter and kept by each replica until the lists they depend
-- on change. A viewer's lists depend on the public images and on its own, so the counter is kept
-- per account (0: the public images; account ids start at 1): a write in one account does not
-- make every other account recount, and writers in different accounts never wait on one row.
-- The counter moves inside the writing transaction, so a replica that sees the new counter sees
-- the new rows too.
CREATE TABLE list_generation (
    owner_key BIGINT PRIMARY KEY,
    n         BIGINT NOT NULL
);

CREATE FUNCTION list_generation_bump(keys BIGINT[]) RETURNS void LANGUAGE sql AS $$
    -- In key order, so that two transactions that move the same counters cannot deadlock.
    INSERT INTO list_generation (owner_key, n)
    SELECT k, 1 FROM (SELECT DISTINCT k FROM unnest(keys) AS k WHERE k IS NOT NULL) AS d ORDER BY k
    ON CONFLICT (owner_key) DO UPDATE SET n = list_generation.n + 1
$$;

-- Per statement, not per row: a bulk insert of a million images moves each counter once.
CREATE FUNCTION images_list_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM list_generation_bump(ARRAY(
            SELECT DISTINCT k FROM new_rows, LATERAL (VALUES (CASE WHEN public THEN 0 END), (owner_id)) AS v(k)));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM list_generation_bump(ARRAY(
            SELECT DISTINCT k FROM old_rows, LATERAL (VALUES (CASE WHEN public THEN 0 END), (owner_id)) AS v(k)));
    ELSE
        -- Only what can move an image into or out of a list: a status change to or from
        -- deleted/retired, visibility, owner, listing. Progress of an import moves nothing.
        PERFORM list_generation_bump(ARRAY(
            SELECT DISTINCT k
            FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id,
                LATERAL (VALUES (CASE WHEN o.public THEN 0 END), (o.owner_id),
                                (CASE WHEN n.public THEN 0 END), (n.owner_id)) AS v(k)
            WHERE (o.status IN ('deleted', 'retired')) IS DISTINCT FROM (n.status IN ('deleted', 'retired'))
               OR o.public IS DISTINCT FROM n.public
               OR o.owner_id IS DISTINCT FROM n.owner_id
               OR o.listing IS DISTINCT FROM n.listing));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER images_list_generation_insert AFTER INSERT ON images
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION images_list_generation();
CREATE TRIGGER images_list_generation_update AFTER UPDATE ON images
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION images_list_generation();
CREATE TRIGGER images_list_generation_delete AFTER DELETE ON images
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION images_list_generation();

-- A tag added to or taken from an existing image changes its tag's lists. (Tags that go with a
-- deleted image find it gone here; the delete above has moved the counter.)
CREATE FUNCTION image_tags_list_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM list_generation_bump(ARRAY(
            SELECT DISTINCT k FROM (SELECT DISTINCT image_id FROM new_rows) AS t
                JOIN images AS i ON i.id = t.image_id,
                LATERAL (VALUES (CASE WHEN i.public THEN 0 END), (i.owner_id)) AS v(k)));
    ELSE
        PERFORM list_generation_bump(ARRAY(
            SELECT DISTINCT k FROM (SELECT DISTINCT image_id FROM old_rows) AS t
                JOIN images AS i ON i.id = t.image_id,
                LATERAL (VALUES (CASE WHEN i.public THEN 0 END), (i.owner_id)) AS v(k)));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER image_tags_list_generation_insert AFTER INSERT ON image_tags
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION image_tags_list_generation();
CREATE TRIGGER image_tags_list_generation_delete AFTER DELETE ON image_tags
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION image_tags_list_generation();
