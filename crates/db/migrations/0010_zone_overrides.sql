-- Zone polygons an admin drew on a camera's picture (the cameras page), on top of the
-- config file's: the camera's rules use them from the next frame, and `citywatch check`
-- shows them. Every change is in the audit log (zone.set, zone.reset).
CREATE TABLE zone_overrides (
    camera  TEXT NOT NULL,
    zone    TEXT NOT NULL,
    polygon TEXT NOT NULL,              -- JSON [[x, y], ...], normalised to the frame
    set_by  TEXT NOT NULL,
    set_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (camera, zone)
);
