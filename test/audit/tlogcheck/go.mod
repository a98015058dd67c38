module portcullis.invalid/test/audit/tlogcheck

go 1.26.0

require golang.org/x/mod v0.32.0
