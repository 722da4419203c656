// Package registrytest is the harness every package's tests share: a test
// certificate authority, CNCF distribution running in process on
// 127.0.0.1 (plain or TLS, anonymous, htpasswd or Bearer token auth) that
// records the requests it serves, a token server, a proxy that injects
// faults between a client and a registry, Debian's docker-registry as a
// real process, and the small readers tests check a registry with
// (catalog, tags, consistency).
//
// Everything it starts listens on loopback only and is stopped in the
// test's Cleanup; nothing in it is shared between tests.
//
// A typical test:
//
//	ca := registrytest.NewCA(t)
//	reg := registrytest.New(t, registrytest.WithTLS(ca),
//		registrytest.WithHtpasswd(map[string]string{"ci-bot": "secret"}))
//	registrytest.PushLayout(t, "testdata/bases/nginx-alpine",
//		reg.Host+"/library/nginx:alpine", reg.OptionsAs("ci-bot")...)
//	// ... run the code under test with --ca-cert ca.File ...
//	if n := reg.Writes(); n != 0 { ... }
package registrytest
