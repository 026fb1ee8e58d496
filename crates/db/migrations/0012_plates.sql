-- A vehicle's plate (车牌号): the text its reads voted for, or an operator's correction, and
-- the details (confidence, reads, who corrected it) as JSON. Indexed by camera for the
-- learning memory and for finding a plate's other captures.
ALTER TABLE captures ADD COLUMN plate TEXT;
ALTER TABLE captures ADD COLUMN plate_detail TEXT;
CREATE INDEX captures_plate ON captures (camera, plate);
