module github.com/tl-sh/tl

go 1.26

require (
	github.com/creack/pty v1.1.24
	github.com/rogpeppe/go-internal v1.16.0
	github.com/spf13/pflag v1.1.0
	golang.org/x/sys v0.41.0
	golang.org/x/term v0.40.0
)

require golang.org/x/tools v0.26.0 // indirect
