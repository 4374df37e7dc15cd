"""The S3 archive store: client, Object Lock puts, resumable multipart uploads, verification."""
