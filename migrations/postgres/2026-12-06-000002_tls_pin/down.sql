ALTER TABLE mailboxes DROP COLUMN tls_pin;
