-- step_trainer_landing: one row per valid line of step_trainer/landing/*.json.
-- Columns whose comment starts with "required" must be present in every record;
-- a record without one goes to step_trainer/quarantine/.
create external table if not exists step_trainer_landing (
    sensorReadingTime bigint comment 'required: epoch ms of the reading',
    serialNumber string comment 'required: the step trainer; matches customer serialNumber',
    distanceFromObject int comment 'required: distance in cm'
)
row format serde 'org.openx.data.jsonserde.JsonSerDe'
location 's3://${bucket}/step_trainer/landing/';
