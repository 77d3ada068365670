-- 0018_contact_language: the language of the emails a person gets.
--
-- Notification emails were in English whatever the person's language. A
-- contact now keeps the language (an xml:lang) of the request that set its
-- email address, a person's one setting that speaks of email: the
-- confirmation code went out in it, and so do the emails that follow. NULL:
-- English (a company's address from the directory, set by the operator).

ALTER TABLE contacts ADD COLUMN lang text;
