-- Every take made so far moves over with its id, so its hold (`shot:{id}`) still matches.
INSERT INTO jobs (
    id, kind, parent_id, seq, ledger_key, guild_id, channel_id, user_id, args, outputs, state, attempts,
    next_attempt_at, request_id, endpoint, backend, price_micros, queue_position, progress_message_id,
    reply_to_message_id, result_message_id, error, created_at, submitted_at, started_at, completed_at,
    finished_at, updated_at
)
SELECT
    id, 'take', root_shot_id, take, 'shot:' || id, guild_id, channel_id, user_id,
    json_object(
        'prompt', prompt, 'negative_prompt', negative_prompt, 'duration_s', duration_s,
        'aspect_ratio', aspect_ratio, 'audio', audio != 0, 'anchor_version_id', anchor_version_id,
        'upload_limit_bytes', upload_limit_bytes
    ),
    json_object('url', output_url, 'path', clip_path),
    state, 0, 0, request_id, endpoint, backend, price_micros, queue_position, progress_message_id,
    reply_to_message_id, clip_message_id, error, created_at, submitted_at, started_at, completed_at,
    finished_at, updated_at
FROM shots ORDER BY id;

DROP TABLE shots;
