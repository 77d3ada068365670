-- 0009_quiet_hours: a customer's quiet hours.
--
-- No web push and no email during them: the cascade postpones its step to
-- their end (nothing is dropped). quiet_hours is "HH:MM-HH:MM" (it may wrap
-- past midnight), read in the IANA time zone quiet_timezone.

ALTER TABLE contacts ADD COLUMN quiet_hours text, ADD COLUMN quiet_timezone text;
