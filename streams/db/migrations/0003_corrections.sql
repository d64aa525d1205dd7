-- Corrections are ledger rows that name the event they correct; the sink checks them
-- against that event, and audit follows the chain. The dead letters keep the offending
-- value and the rule it broke, as the departments see them.
ALTER TABLE events ADD COLUMN corrects uuid;
CREATE INDEX events_corrects ON events (corrects) WHERE corrects IS NOT NULL;

ALTER TABLE deadletters ADD COLUMN value text;
ALTER TABLE deadletters ADD COLUMN rule text;
