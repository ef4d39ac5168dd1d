-- customer_landing: one row per valid line of customer/landing/*.json, as the STEDI app drops them.
-- Columns whose comment starts with "required" must be present (not null) in every record;
-- a record without one goes to customer/quarantine/. Epoch-millisecond fields are BIGINT.
create external table if not exists customer_landing (
    customerName string comment 'full name; PII',
    email string comment 'required: the customer key; PII',
    phone string comment 'PII',
    birthDay string comment 'yyyy-01-01; the year may have fewer than four digits',
    serialNumber string comment 'required: the step trainer the customer owns',
    registrationDate bigint comment 'epoch ms',
    lastUpdateDate bigint comment 'required: epoch ms; the latest record of a customer wins',
    shareWithResearchAsOfDate bigint comment 'epoch ms; missing when the customer has not consented',
    shareWithPublicAsOfDate bigint comment 'epoch ms',
    shareWithFriendsAsOfDate bigint comment 'epoch ms'
)
row format serde 'org.openx.data.jsonserde.JsonSerDe'
location 's3://${bucket}/customer/landing/';
