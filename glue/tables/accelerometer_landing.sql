-- accelerometer_landing: one row per valid line of accelerometer/landing/*.json.
-- Several readings of one user may share a millisecond. Columns whose comment starts with
-- "required" must be present in every record; a record without one goes to accelerometer/quarantine/.
create external table if not exists accelerometer_landing (
    user string comment 'required: the customer email; PII',
    timestamp bigint comment 'required: epoch ms of the reading',
    x double comment 'required',
    y double comment 'required',
    z double comment 'required'
)
row format serde 'org.openx.data.jsonserde.JsonSerDe'
location 's3://${bucket}/accelerometer/landing/';
