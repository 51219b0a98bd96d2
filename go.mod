module github.com/tokend/tokend

go 1.26.8

require golang.org/x/oauth2 v0.37.0
