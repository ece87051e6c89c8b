-- The backoff formula: min(max, base * 2^(attempt-1)), shortened by jitter.
SELECT attempt, jobq.backoff(attempt, '1 second', '1 hour', 0) AS delay
FROM generate_series(1, 14, 3) AS attempt;
SELECT bool_and(d BETWEEN interval '7.2 seconds' AND interval '8 seconds') AS jitter_bounded
FROM (SELECT jobq.backoff(4, '1 second', '1 hour', 0.1) AS d FROM generate_series(1, 200)) s;
SELECT jobq.backoff(1000, '1 second', '1 hour', 0) = interval '1 hour' AS capped_without_overflow;
