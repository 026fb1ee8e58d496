-- A capture's reviews by its id: the summary reads each capture's first decision and its
-- rejection reason, and a confirmation looks up who confirmed, without scanning every review.
CREATE INDEX reviews_capture ON reviews (capture_id);
