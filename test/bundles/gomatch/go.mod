module portcullis.invalid/test/bundles/gomatch

go 1.26.0
