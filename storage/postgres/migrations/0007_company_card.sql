-- 0007_company_card: what a company's card shows besides its name, email,
-- city, category and opening hours: a phone number, a web site and a street
-- address. All optional (NULL: not published), so existing rows and older
-- import files stay valid. The companies_notify_directory trigger (0001)
-- already reports every UPDATE, so running components pick them up at once.

ALTER TABLE companies
    ADD COLUMN phone   text,
    ADD COLUMN url     text,
    ADD COLUMN address text;
