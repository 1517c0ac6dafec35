package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// defaultDrainTimeout is gollm serve's --drain-timeout when the manifest
// does not give one: 30 s, the server's documented default.
const defaultDrainTimeout = 30 * time.Second

// object is one YAML document of deploy/kubernetes: what every
// Kubernetes object has, plus the document itself for a typed decode.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`

	file string
	node *yaml.Node
}

// The fields of each kind that the checks read; the rest is ignored.
type (
	deployment struct {
		Spec struct {
			Selector labelSelector `yaml:"selector"`
			Template struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
				Spec podSpec `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	podSpec struct {
		ServiceAccountName            string `yaml:"serviceAccountName"`
		TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
			RunAsUser    *int  `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
		Volumes    []struct {
			Name                  string `yaml:"name"`
			PersistentVolumeClaim *struct {
				ClaimName string `yaml:"claimName"`
				ReadOnly  bool   `yaml:"readOnly"`
			} `yaml:"persistentVolumeClaim"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
		} `yaml:"volumes"`
	}
	container struct {
		Name           string          `yaml:"name"`
		Image          string          `yaml:"image"`
		Args           []string        `yaml:"args"`
		Ports          []containerPort `yaml:"ports"`
		StartupProbe   *probe          `yaml:"startupProbe"`
		ReadinessProbe *probe          `yaml:"readinessProbe"`
		LivenessProbe  *probe          `yaml:"livenessProbe"`
		Lifecycle      struct {
			PreStop struct {
				Sleep struct {
					Seconds int `yaml:"seconds"`
				} `yaml:"sleep"`
			} `yaml:"preStop"`
		} `yaml:"lifecycle"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	containerPort struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"` // a number or a port name
		} `yaml:"httpGet"`
		PeriodSeconds    int `yaml:"periodSeconds"`
		FailureThreshold int `yaml:"failureThreshold"`
	}
	service struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort any    `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	inferencePool struct {
		Spec struct {
			Selector    labelSelector `yaml:"selector"`
			TargetPorts []struct {
				Number int `yaml:"number"`
			} `yaml:"targetPorts"`
			EndpointPickerRef struct {
				Kind string `yaml:"kind"`
				Name string `yaml:"name"`
				Port struct {
					Number int `yaml:"number"`
				} `yaml:"port"`
				FailureMode string `yaml:"failureMode"`
			} `yaml:"endpointPickerRef"`
		} `yaml:"spec"`
	}
	httpRoute struct {
		Spec struct {
			Rules []struct {
				BackendRefs []struct {
					Group string `yaml:"group"`
					Kind  string `yaml:"kind"`
					Name  string `yaml:"name"`
				} `yaml:"backendRefs"`
			} `yaml:"rules"`
		} `yaml:"spec"`
	}
	binding struct {
		Subjects []struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"subjects"`
		RoleRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"roleRef"`
	}
	configMap struct {
		Data map[string]string `yaml:"data"`
	}
)

// knownKinds are the objects the example may hold, each with the API
// version that serves it today. A typo in either is a document the API
// server would refuse.
var knownKinds = map[string]string{
	"Deployment":         "apps/v1",
	"Service":            "v1",
	"ServiceAccount":     "v1",
	"ConfigMap":          "v1",
	"Role":               "rbac.authorization.k8s.io/v1",
	"RoleBinding":        "rbac.authorization.k8s.io/v1",
	"ClusterRole":        "rbac.authorization.k8s.io/v1",
	"ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
	"InferencePool":      "inference.networking.k8s.io/v1",
	"HTTPRoute":          "gateway.networking.k8s.io/v1",
}

// manifests parses every document of deploy/kubernetes/*.yaml.
func manifests(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in kubernetes/: %v", err)
	}
	var objs []object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 1; ; i++ {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s, document %d: %v", f, i, err)
			}
			o := object{file: fmt.Sprintf("%s#%d", f, i), node: &node}
			if err := node.Decode(&o); err != nil {
				t.Fatalf("%s: %v", o.file, err)
			}
			objs = append(objs, o)
		}
	}
	return objs
}

// find returns the one object of kind and name, decoded into a *T.
func find[T any](t *testing.T, objs []object, kind, name string) *T {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			v := new(T)
			if err := o.node.Decode(v); err != nil {
				t.Fatalf("%s (%s %s): %v", o.file, kind, name, err)
			}
			return v
		}
	}
	t.Fatalf("no %s %q in kubernetes/", kind, name)
	return nil
}

// flagValue returns the value of --name in args ("--name v" or "--name=v").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// port resolves a port reference (a number, or the name of one of c's
// ports) to a number; 0 if it names none.
func (c *container) port(ref any) int {
	switch r := ref.(type) {
	case int:
		return r
	case string:
		if n, err := strconv.Atoi(r); err == nil {
			return n
		}
		for _, p := range c.Ports {
			if p.Name == r {
				return p.ContainerPort
			}
		}
	}
	return 0
}

func (c *container) hasPort(n int) bool {
	return slices.ContainsFunc(c.Ports, func(p containerPort) bool { return p.ContainerPort == n })
}

// deref shows an optional field: its value, or <unset>.
func deref[T any](p *T) any {
	if p == nil {
		return "<unset>"
	}
	return *p
}

// subset reports whether every pair of sel is in labels (an empty
// selector selects everything, and is refused here).
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// The example's objects, by name.
const (
	serverName = "gollm"
	eppName    = "gollm-epp"
	poolName   = "gollm"
)

// gollmPod returns the server's Deployment and its one container.
func gollmPod(t *testing.T, objs []object) (*deployment, *container) {
	t.Helper()
	d := find[deployment](t, objs, "Deployment", serverName)
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("the gollm pod has %d containers, want 1", n)
	}
	return d, &d.Spec.Template.Spec.Containers[0]
}

// TestManifestsParse: every document is YAML that names a kind the API
// server serves, at the version it serves it, with a name, once.
func TestManifestsParse(t *testing.T) {
	seen := map[string]string{}
	objs := manifests(t)
	for _, o := range objs {
		if want, ok := knownKinds[o.Kind]; !ok {
			t.Errorf("%s: unexpected kind %q", o.file, o.Kind)
		} else if o.APIVersion != want {
			t.Errorf("%s: %s at apiVersion %q, want %q", o.file, o.Kind, o.APIVersion, want)
		}
		if o.Metadata.Name == "" {
			t.Errorf("%s: %s without a name", o.file, o.Kind)
		}
		key := o.Kind + "/" + o.Metadata.Name
		if prev, dup := seen[key]; dup {
			t.Errorf("%s: %s already in %s", o.file, key, prev)
		}
		seen[key] = o.file
	}
	t.Logf("%d objects: %v", len(objs), slices.Sorted(maps.Keys(seen)))
}

// TestServerPod: the gollm Deployment runs `gollm serve` listening where
// its ports, probes and Service say, lets a drain finish before SIGKILL
// and before liveness could restart it, and runs as the image's non-root
// user with the model read-only.
func TestServerPod(t *testing.T) {
	objs := manifests(t)
	d, c := gollmPod(t, objs)
	pod := d.Spec.Template.Spec

	if !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels)
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("args %v: the first must be serve", c.Args)
	}
	if host, _ := flagValue(c.Args, "--host"); host != "0.0.0.0" {
		t.Errorf("--host %q: the server binds to loopback by default, unreachable from outside the pod", host)
	}
	portArg, _ := flagValue(c.Args, "--port")
	port, err := strconv.Atoi(portArg)
	if err != nil || !c.hasPort(port) || c.port("http") != port {
		t.Errorf("--port %q; the container's http port is %d", portArg, c.port("http"))
	}

	// Probes: /health, on the port the server listens on.
	probes := map[string]*probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}
	for name, p := range probes {
		switch {
		case p == nil:
			t.Errorf("no %s probe", name)
		case p.HTTPGet == nil || p.HTTPGet.Path != "/health":
			t.Errorf("%s probe: %+v, want an HTTP GET of /health", name, p.HTTPGet)
		case c.port(p.HTTPGet.Port) != port:
			t.Errorf("%s probe on port %v, the server listens on %d", name, p.HTTPGet.Port, port)
		}
	}

	// Drain: preStop pause + --drain-timeout < grace period, and
	// liveness cannot fail the pod during a drain.
	drain := defaultDrainTimeout
	if v, ok := flagValue(c.Args, "--drain-timeout"); ok {
		if drain, err = time.ParseDuration(v); err != nil {
			t.Fatalf("--drain-timeout %q: %v", v, err)
		}
	}
	if pod.TerminationGracePeriodSeconds == nil {
		t.Fatal("no terminationGracePeriodSeconds (the default, 30 s, is no longer than the drain)")
	}
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if grace <= preStop+drain {
		t.Errorf("grace period %v is not longer than the preStop pause %v plus the drain %v", grace, preStop, drain)
	}
	if l := c.LivenessProbe; l != nil {
		if window := time.Duration(max(l.PeriodSeconds, 1)*max(l.FailureThreshold, 1)) * time.Second; window <= drain {
			t.Errorf("liveness restarts after %v of 503s, within the %v drain", window, drain)
		}
	}
	if c.StartupProbe != nil && c.StartupProbe.PeriodSeconds*c.StartupProbe.FailureThreshold < 60 {
		t.Errorf("the startup probe gives loading %d s", c.StartupProbe.PeriodSeconds*c.StartupProbe.FailureThreshold)
	}

	// CPU: one worker per CPU of the limit, in a Guaranteed pod.
	threads, _ := flagValue(c.Args, "--threads")
	if cpu := c.Resources.Limits["cpu"]; threads != cpu {
		t.Errorf("--threads %q with a CPU limit of %q: the workers would be throttled or idle", threads, cpu)
	}
	for _, r := range []string{"cpu", "memory"} {
		if req, lim := c.Resources.Requests[r], c.Resources.Limits[r]; req == "" || req != lim {
			t.Errorf("%s: request %q, limit %q; want equal (a Guaranteed pod)", r, req, lim)
		}
	}

	// The model: on a read-only mount, from a claim mounted read-only.
	model, _ := flagValue(c.Args, "--model")
	mounted := false
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(model, strings.TrimSuffix(m.MountPath, "/")+"/") {
			mounted = true
			if !m.ReadOnly {
				t.Errorf("the model's mount %s is writable", m.MountPath)
			}
			for _, v := range pod.Volumes {
				if v.Name == m.Name && (v.PersistentVolumeClaim == nil || !v.PersistentVolumeClaim.ReadOnly) {
					t.Errorf("volume %s: want a claim mounted read-only", v.Name)
				}
			}
		}
	}
	if !mounted {
		t.Errorf("--model %q is on no mounted volume", model)
	}

	// The user: the image's, and not root.
	uid, _, _ := strings.Cut(dockerfileUser(t), ":")
	sc := pod.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || strconv.Itoa(*sc.RunAsUser) != uid {
		t.Errorf("pod security context: runAsNonRoot %v, runAsUser %v; want true and %s (the image's USER)",
			deref(sc.RunAsNonRoot), deref(sc.RunAsUser), uid)
	}
}

// TestRouting: the Service, the InferencePool, its endpoint picker and
// the HTTPRoute all point at one another and at the server's port.
func TestRouting(t *testing.T) {
	objs := manifests(t)
	d, c := gollmPod(t, objs)
	podLabels := d.Spec.Template.Metadata.Labels
	port := c.port("http")

	svc := find[service](t, objs, "Service", serverName)
	if !subset(svc.Spec.Selector, podLabels) {
		t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, podLabels)
	}
	for _, p := range svc.Spec.Ports {
		if got := c.port(p.TargetPort); got != port {
			t.Errorf("Service port %d targets %v = %d; the server listens on %d", p.Port, p.TargetPort, got, port)
		}
	}

	pool := find[inferencePool](t, objs, "InferencePool", poolName)
	if !subset(pool.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("InferencePool selector %v does not select the pods %v", pool.Spec.Selector.MatchLabels, podLabels)
	}
	if len(pool.Spec.TargetPorts) == 0 {
		t.Error("InferencePool without targetPorts")
	}
	for _, p := range pool.Spec.TargetPorts {
		if p.Number != port {
			t.Errorf("InferencePool targets port %d; the server listens on %d", p.Number, port)
		}
	}

	// The endpoint picker: a Service on the port the pool names, in front
	// of a Deployment that serves it and watches this pool.
	ref := pool.Spec.EndpointPickerRef
	if ref.Kind != "" && ref.Kind != "Service" {
		t.Errorf("endpointPickerRef kind %q", ref.Kind)
	}
	eppSvc := find[service](t, objs, "Service", ref.Name)
	epp := find[deployment](t, objs, "Deployment", eppName)
	ec := &epp.Spec.Template.Spec.Containers[0]
	served := false
	for _, p := range eppSvc.Spec.Ports {
		if p.Port == ref.Port.Number {
			served = ec.port(p.TargetPort) != 0 && ec.hasPort(ec.port(p.TargetPort))
		}
	}
	if !served {
		t.Errorf("the pool's picker %s:%d is not a port of the EPP container", ref.Name, ref.Port.Number)
	}
	if !subset(eppSvc.Spec.Selector, epp.Spec.Template.Metadata.Labels) || !subset(epp.Spec.Selector.MatchLabels, epp.Spec.Template.Metadata.Labels) {
		t.Errorf("the EPP Service or Deployment does not select the EPP pods")
	}
	if name, _ := flagValue(ec.Args, "--pool-name"); name != poolName {
		t.Errorf("the EPP watches pool %q, not %q", name, poolName)
	}
	// gollm exposes the EPP's default metric names, so it needs no
	// metric flag (newer EPPs refuse them anyway).
	for _, a := range ec.Args {
		if strings.HasPrefix(a, "--") && strings.HasSuffix(strings.SplitN(a, "=", 2)[0], "-metric") {
			t.Errorf("EPP flag %s: gollm's metrics have the default names", a)
		}
	}
	if g, eg := d.Spec.Template.Spec.TerminationGracePeriodSeconds, epp.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || eg == nil || *eg < *g {
		t.Errorf("the EPP's grace period should be at least the pool pods'")
	}
	if cfg, ok := flagValue(ec.Args, "--config-file"); ok {
		dir, file := filepath.Split(cfg)
		found := false
		for _, m := range ec.VolumeMounts {
			if filepath.Clean(m.MountPath) != filepath.Clean(dir) {
				continue
			}
			for _, v := range epp.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil {
					_, found = find[configMap](t, objs, "ConfigMap", v.ConfigMap.Name).Data[file]
				}
			}
		}
		if !found {
			t.Errorf("--config-file %s is in no mounted ConfigMap", cfg)
		}
	}

	// Its service account exists and is bound to a role that exists.
	sa := epp.Spec.Template.Spec.ServiceAccountName
	find[struct{}](t, objs, "ServiceAccount", sa)
	bound := false
	for _, o := range objs {
		if o.Kind != "RoleBinding" && o.Kind != "ClusterRoleBinding" {
			continue
		}
		b := find[binding](t, objs, o.Kind, o.Metadata.Name)
		find[struct{}](t, objs, b.RoleRef.Kind, b.RoleRef.Name)
		for _, s := range b.Subjects {
			bound = bound || (s.Kind == "ServiceAccount" && s.Name == sa)
		}
	}
	if !bound {
		t.Errorf("service account %s is bound to no role", sa)
	}

	route := find[httpRoute](t, objs, "HTTPRoute", serverName)
	toPool := false
	for _, r := range route.Spec.Rules {
		for _, b := range r.BackendRefs {
			if b.Group != "inference.networking.k8s.io" || b.Kind != "InferencePool" || b.Name != poolName {
				t.Errorf("HTTPRoute backend %+v; want the InferencePool %s", b, poolName)
			}
			toPool = true
		}
	}
	if !toPool {
		t.Error("the HTTPRoute sends nothing to the pool")
	}
}

// dockerInstruction is one instruction of a Dockerfile, continuation
// lines joined.
type dockerInstruction struct{ cmd, args string }

func dockerfile(t *testing.T) []dockerInstruction {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// finalStage returns the instructions from the last FROM on.
func finalStage(t *testing.T) []dockerInstruction {
	ins := dockerfile(t)
	last := -1
	for i, in := range ins {
		if in.cmd == "FROM" {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	return ins[last:]
}

// dockerfileUser returns the final stage's USER.
func dockerfileUser(t *testing.T) string {
	t.Helper()
	user := ""
	for _, in := range finalStage(t) {
		if in.cmd == "USER" {
			user = in.args
		}
	}
	return user
}

// TestDockerfile: it cannot be built here (no Docker), so its text is
// checked: a static build in one stage, a base with no shell or libc to
// run it, a non-root user, the model as a volume, and `serve` on every
// interface by default.
func TestDockerfile(t *testing.T) {
	ins := dockerfile(t)
	froms, static := 0, false
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			froms++
		case "RUN":
			static = static || (strings.Contains(in.args, "CGO_ENABLED=0") && strings.Contains(in.args, "go build"))
		}
	}
	if froms < 2 {
		t.Errorf("%d stages; want a build stage and a runtime stage", froms)
	}
	if !static {
		t.Error("no RUN builds with CGO_ENABLED=0 go build")
	}

	final := finalStage(t)
	base := strings.Fields(final[0].args)[0]
	if base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("runtime base %s; want scratch or distroless/static", base)
	}
	switch u, _, _ := strings.Cut(dockerfileUser(t), ":"); u {
	case "", "0", "root":
		t.Errorf("final stage USER %q: the server must not run as root", u)
	}
	var volume, entry, cmd string
	for _, in := range final {
		switch in.cmd {
		case "VOLUME":
			volume = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "CMD":
			cmd = in.args
		}
	}
	if !strings.Contains(volume, "/models") {
		t.Errorf("VOLUME %q; want /models", volume)
	}
	if !strings.Contains(entry, "gollm") || !strings.HasPrefix(cmd, `["serve",`) || !strings.Contains(cmd, `"--host", "0.0.0.0"`) {
		t.Errorf("ENTRYPOINT %s CMD %s; want gollm serve --host 0.0.0.0 (exec form)", entry, cmd)
	}
}
