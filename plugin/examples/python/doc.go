// Package pythonplugin holds no Go code: it is the home of echo-python, a
// handler plugin written in Python (handler.py, started by the echo-python
// launcher), and of the Go test that runs it through the runner's plugin
// host.
//
// Why it exists: the plugin protocol is go-plugin's gRPC protocol plus
// plugin/proto/handler.proto, and nothing in it is Go-specific. Keeping a
// plugin in another language in the tree, and running it in CI, keeps that
// true: a change to the handshake, the proto or the host that only a Go
// plugin would survive fails this package's test.
//
// The test needs Debian's python3-grpcio and python3-protobuf for
// /usr/bin/python3. It skips when they are missing, except under CI=true,
// where it fails instead.
package pythonplugin
