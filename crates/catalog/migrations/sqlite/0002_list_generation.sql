-- List totals (see count_cache.rs). Counting a million visible images takes SQLite a good part
-- of a second, and every list page reports the total; the total only changes when an image
-- enters or leaves a list. These triggers move `list_generation` on exactly those writes (from
-- any process, the CLI's included), and a cached total is used only while the generation it was
-- counted at is still current.
--
-- Catalogs made before this migration existed already have these objects (they were created at
-- every open): hence IF NOT EXISTS and OR IGNORE, which leave them, and their counter, as they are.
CREATE TABLE IF NOT EXISTS list_generation (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT OR IGNORE INTO list_generation (id, n) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS list_generation_insert AFTER INSERT ON images
    BEGIN UPDATE list_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS list_generation_delete AFTER DELETE ON images
    BEGIN UPDATE list_generation SET n = n + 1 WHERE id = 1; END;
-- Only what can move an image into or out of a list; progress of an import moves nothing.
CREATE TRIGGER IF NOT EXISTS list_generation_update
    AFTER UPDATE OF status, public, owner_id, listing ON images
    WHEN (OLD.status IN ('deleted', 'retired')) IS NOT (NEW.status IN ('deleted', 'retired'))
        OR OLD.public IS NOT NEW.public OR OLD.owner_id IS NOT NEW.owner_id
        OR OLD.listing IS NOT NEW.listing
    BEGIN UPDATE list_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS list_generation_tag_insert AFTER INSERT ON image_tags
    BEGIN UPDATE list_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS list_generation_tag_delete AFTER DELETE ON image_tags
    BEGIN UPDATE list_generation SET n = n + 1 WHERE id = 1; END;
