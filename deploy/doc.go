// Package deploy holds no code: it is the home of gollm's container image
// (Dockerfile) and Kubernetes example (kubernetes/*.yaml), and its test
// reads those files and checks that they agree with one another and with
// the server's flags, since nothing here is built or applied in CI.
package deploy
