-- Keys that name a person known under another key: announced by the
-- referrals service when it learns identifiers belong to one person, or found
-- here when a health record names people stored apart. Kept path-compressed:
-- every merged key names the surviving key directly, and no surviving key is
-- itself merged. Everything stored under a merged key has moved to the
-- survivor; an event or request arriving later under it is taken as the
-- survivor's.
CREATE TABLE person_links (
    merged_key    TEXT PRIMARY KEY,
    surviving_key TEXT NOT NULL,
    linked_at     TEXT NOT NULL
);
CREATE INDEX person_links_by_survivor ON person_links (surviving_key);
