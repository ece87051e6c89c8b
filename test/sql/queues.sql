-- Queue management: create, alter, pause/resume, drop, and every bad input.
\set VERBOSITY terse
SELECT jobq.create_queue('q_default');
SELECT name, paused, max_attempts, backoff_base, backoff_max, backoff_jitter, lease, retention,
       concurrency, handler IS NULL AS no_handler
FROM jobq.queues WHERE name = 'q_default';

SELECT jobq.create_queue('q.custom-1_a', max_attempts => 3, backoff_base => '2 seconds',
                         backoff_max => '1 minute', backoff_jitter => 0, lease => '30 seconds',
                         retention => '1 hour', concurrency => 5);
SELECT max_attempts, backoff_base, backoff_max, backoff_jitter, lease, retention, concurrency
FROM jobq.queues WHERE name = 'q.custom-1_a';

-- duplicate: error, or quietly kept with if_not_exists
SELECT jobq.create_queue('q_default');
SELECT jobq.create_queue('q_default', max_attempts => 7, if_not_exists => true);
SELECT max_attempts = 25 AS unchanged FROM jobq.queues WHERE name = 'q_default';

-- invalid names
SELECT jobq.create_queue('');
SELECT jobq.create_queue('Upper');
SELECT jobq.create_queue('has space');
SELECT jobq.create_queue('_leading');
SELECT jobq.create_queue(repeat('a', 49));
SELECT jobq.create_queue(repeat('a', 48));
SELECT jobq.create_queue(NULL);
SELECT jobq.create_queue('x''; DROP TABLE jobq.job; --');

-- invalid options
SELECT jobq.create_queue('bad', max_attempts => 0);
SELECT jobq.create_queue('bad', max_attempts => 1001);
SELECT jobq.create_queue('bad', backoff_base => '0 seconds');
SELECT jobq.create_queue('bad', backoff_base => '-1 second');
SELECT jobq.create_queue('bad', backoff_base => '10 seconds', backoff_max => '1 second');
SELECT jobq.create_queue('bad', backoff_jitter => 1.5);
SELECT jobq.create_queue('bad', lease => '0 seconds');
SELECT jobq.create_queue('bad', lease => NULL);
SELECT jobq.create_queue('bad', retention => '-1 day');
SELECT jobq.create_queue('bad', concurrency => 0);
SELECT jobq.create_queue('bad', handler_timeout => '-5 seconds');
SELECT count(*) = 0 AS nothing_created FROM jobq.queues WHERE name = 'bad';

-- alter: NULL keeps a setting; concurrency => 0 removes the limit
SELECT jobq.alter_queue('q.custom-1_a', max_attempts => 10, concurrency => 0);
SELECT max_attempts, concurrency IS NULL AS unlimited, lease
FROM jobq.queues WHERE name = 'q.custom-1_a';
SELECT jobq.alter_queue('q.custom-1_a', lease => '-1 second');
SELECT jobq.alter_queue('missing', lease => '1 second');
SELECT lease = '30 seconds' AS lease_unchanged FROM jobq.queues WHERE name = 'q.custom-1_a';

-- pause / resume
SELECT jobq.pause('q_default');
SELECT paused FROM jobq.queues WHERE name = 'q_default';
SELECT jobq.resume('q_default');
SELECT paused FROM jobq.queues WHERE name = 'q_default';
SELECT jobq.pause('missing');

-- drop refuses while jobs are unfinished, unless forced
SELECT jobq.enqueue('q_default', '{}') > 0 AS enqueued;
SELECT jobq.drop_queue('q_default');
SELECT count(*) = 1 AS still_there FROM jobq.jobs WHERE queue = 'q_default';
SELECT jobq.drop_queue('q_default', force => true);
SELECT count(*) = 0 AS jobs_gone FROM jobq.jobs WHERE queue = 'q_default';
SELECT count(*) = 0 AS queue_gone FROM jobq.queues WHERE name = 'q_default';
SELECT jobq.drop_queue('q_default');
SELECT jobq.drop_queue('q.custom-1_a');
SELECT jobq.drop_queue(repeat('a', 48));
