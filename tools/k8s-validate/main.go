// k8s-validate checks Kubernetes manifests against the official API types, for machines where
// no cluster runs (Portcullis CI validates deploy/kubernetes with it).
//
//	k8s-validate deploy/kubernetes/central/kustomization.yaml
//	k8s-validate deploy/kubernetes/sidecar/*.yaml
//
// All files named on the command line form one set, together with the resources every
// Kustomization in the set lists (loaded relative to the kustomization's directory). For each
// YAML document in the set it does what the API server's decoding does, and a part of what
// its validation and the controllers would find later:
//
//  1. YAML -> JSON (duplicate keys rejected) -> the Go type k8s.io/api registers for the
//     document's apiVersion and kind, strictly: case-sensitive field names, unknown and
//     duplicate fields rejected, wrong types rejected (sigs.k8s.io/json.UnmarshalStrict, the
//     decoder the API server uses for fieldValidation=Strict). A kind/version that is not
//     registered (a typo, a removed beta version) is an error. Kustomizations decode into
//     sigs.k8s.io/kustomize/api/types.Kustomization the same way.
//  2. Object metadata as the API server validates it (name syntax per kind, labels,
//     annotations), label selectors, container and port names.
//  3. Cross-object checks that need no cluster: a workload's selector matches its pod
//     template's labels; probe ports are numeric or named container ports; volume mounts name
//     declared volumes; referenced ConfigMaps (and keys), ServiceAccounts and HPA targets
//     exist in the set; Services, PodDisruptionBudgets and NetworkPolicies select some pod
//     of the set and a Service's named target ports exist there; an HPA on CPU/memory
//     utilization targets containers that request that resource; a Kustomization's
//     resources exist.
//
// A document that cannot be decoded at all (not YAML, a wrong type) turns the cross-object
// checks off for its set, so that its absence is not reported again as missing references.
// Secrets are not required to be in the set (they are made outside of manifests); an optional
// ConfigMap reference may be missing.
//
// Exit status: 0 when every file is valid, 1 when any is not, 2 on usage errors. Each problem
// is one line on stderr: "<file>: <KIND>: <where>: <what>", KIND one of the constants below.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	kustomize "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// Problem kinds, printed before each message so that callers (and tests) can tell what
// failed without reading the text.
const (
	kindRead          = "READ"          // a file cannot be read
	kindYAML          = "YAML"          // not YAML, or a duplicate key
	kindUnknownKind   = "UNKNOWN_KIND"  // apiVersion/kind missing or not a registered type
	kindDecode        = "DECODE"        // unknown field, wrong type
	kindMeta          = "META"          // metadata, names, labels, selectors syntax
	kindSelector      = "SELECTOR"      // a selector that cannot select what it must
	kindPort          = "PORT"          // a port that is neither numeric nor a named container port
	kindReference     = "REFERENCE"     // a referenced object, key or volume that is not there
	kindResources     = "RESOURCES"     // resource requests an HPA needs
	kindKustomization = "KUSTOMIZATION" // a kustomization resource that does not exist
)

var scheme = runtime.NewScheme()

func init() {
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, autoscalingv1.AddToScheme, autoscalingv2.AddToScheme,
		batchv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme, rbacv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
}

// Kinds without a namespace (of the groups registered above).
var clusterScoped = map[string]bool{
	"Namespace": true, "Node": true, "PersistentVolume": true, "ClusterRole": true,
	"ClusterRoleBinding": true, "IngressClass": true, "ComponentStatus": true,
}

var kustomizationGVK = schema.GroupVersionKind{Group: "kustomize.config.k8s.io", Version: "v1beta1", Kind: "Kustomization"}

// object is one decoded document.
type object struct {
	file  string
	index int // document number in its file, from 0
	gvk   schema.GroupVersionKind
	obj   any // *corev1.ConfigMap, *appsv1.Deployment, *kustomize.Kustomization, ...
	meta  *metav1.ObjectMeta
}

func (o *object) namespace() string {
	if o.meta == nil || o.meta.Namespace == "" {
		return "default"
	}
	return o.meta.Namespace
}

func (o *object) where() string {
	name := ""
	if o.meta != nil {
		name = o.meta.Name
	}
	return fmt.Sprintf("%s %q (document %d)", o.gvk.Kind, name, o.index)
}

// podOwner: a workload or a Pod, with the pod spec and labels it runs.
type podOwner struct {
	o      *object
	labels map[string]string
	spec   *corev1.PodSpec
	path   *field.Path
}

type validator struct {
	problems map[string][]string // by file
	files    []string            // in order of loading
	loaded   map[string]bool     // absolute paths
	objects  []*object
	// a document of the set could not be decoded: cross-object checks are skipped
	undecodable bool
}

func (v *validator) add(file, kind, format string, args ...any) {
	v.problems[file] = append(v.problems[file], kind+": "+fmt.Sprintf(format, args...))
}

func main() {
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprintln(os.Stderr, "usage: k8s-validate manifest.yaml [more.yaml ...]   (all files form one set; kustomization resources are added)")
		os.Exit(2)
	}
	v := &validator{problems: map[string][]string{}, loaded: map[string]bool{}}
	for _, f := range os.Args[1:] {
		v.load(f)
	}
	if !v.undecodable {
		v.crossChecks()
	}
	failed := false
	for _, file := range v.files {
		problems := v.problems[file]
		if len(problems) == 0 {
			n := 0
			for _, o := range v.objects {
				if o.file == file {
					n++
				}
			}
			fmt.Printf("%s: valid (%d objects)\n", file, n)
			continue
		}
		failed = true
		for _, p := range problems {
			fmt.Fprintf(os.Stderr, "%s: %s\n", file, p)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// load reads one file of the set (once) and decodes each of its documents.
func (v *validator) load(file string) {
	abs, err := filepath.Abs(file)
	if err == nil && v.loaded[abs] {
		return
	}
	v.loaded[abs] = true
	v.files = append(v.files, file)
	raw, err := os.ReadFile(file)
	if err != nil {
		v.add(file, kindRead, "%v", err)
		return
	}
	reader := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	// bounded: a document is at least a separator line, so a file has at most len(raw) of them
	for index := 0; index <= len(raw); index++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			v.add(file, kindYAML, "document %d: %v", index, err)
			v.undecodable = true
			return
		}
		v.decode(file, index, doc)
	}
}

// oneLine keeps each problem on one output line (YAML errors span several).
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func isBlank(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			return false
		}
	}
	return true
}

func (v *validator) decode(file string, index int, doc []byte) {
	if isBlank(doc) {
		return
	}
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		v.add(file, kindYAML, "document %d: %s", index, oneLine(err.Error()))
		v.undecodable = true
		return
	}
	var tm metav1.TypeMeta
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		v.add(file, kindDecode, "document %d: not an object with apiVersion and kind: %v", index, err)
		return
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		v.add(file, kindUnknownKind, "document %d: apiVersion and kind are required", index)
		return
	}
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		v.add(file, kindUnknownKind, "document %d: apiVersion %q: %v", index, tm.APIVersion, err)
		return
	}
	gvk := gv.WithKind(tm.Kind)
	o := &object{file: file, index: index, gvk: gvk}
	var target any
	if gvk == kustomizationGVK {
		target = &kustomize.Kustomization{}
	} else {
		typed, err := scheme.New(gvk)
		if err != nil {
			v.add(file, kindUnknownKind, "document %d: %s is not a kind of the Kubernetes API (or of a version still served): %v", index, gvk.String(), err)
			return
		}
		target = typed
	}
	strictErrs, err := sigsjson.UnmarshalStrict(js, target)
	if err != nil {
		// A wrong type leaves the object half decoded: checks across objects would report
		// its absence as further problems, so they are skipped for this set.
		v.add(file, kindDecode, "document %d (%s): %v", index, gvk.Kind, err)
		v.undecodable = true
		return
	}
	// Unknown and duplicate fields are errors, but the object decoded; it stays in the set so
	// that objects referring to it do not report it missing.
	for _, e := range strictErrs {
		v.add(file, kindDecode, "document %d (%s): %v", index, gvk.Kind, e)
	}
	o.obj = target
	if acc, ok := target.(metav1.ObjectMetaAccessor); ok {
		if m, ok := acc.GetObjectMeta().(*metav1.ObjectMeta); ok {
			o.meta = m
		}
	}
	v.objects = append(v.objects, o)
	if o.meta != nil {
		v.checkMeta(o)
	}
	if k, ok := target.(*kustomize.Kustomization); ok {
		v.kustomization(o, k)
	}
}

// checkMeta: what apimachinery's ObjectMeta validation checks, with each kind's name rule.
func (v *validator) checkMeta(o *object) {
	nameFn := apivalidation.NameIsDNSSubdomain
	switch o.gvk.Kind {
	case "Service":
		nameFn = apivalidation.NameIsDNS1035Label
	case "Namespace":
		nameFn = apivalidation.NameIsDNSLabel
	}
	namespaced := !clusterScoped[o.gvk.Kind]
	if !namespaced && o.meta.Namespace != "" {
		v.add(o.file, kindMeta, "%s: metadata.namespace: %s is cluster-scoped", o.where(), o.gvk.Kind)
	}
	// A namespace may be left to kubectl/kustomize; when given it must be valid.
	errs := apivalidation.ValidateObjectMeta(o.meta, namespaced && o.meta.Namespace != "", nameFn, field.NewPath("metadata"))
	for _, e := range errs {
		v.add(o.file, kindMeta, "%s: %v", o.where(), e)
	}
	if cm, ok := o.obj.(*corev1.ConfigMap); ok {
		for k := range cm.Data {
			for _, msg := range validation.IsConfigMapKey(k) {
				v.add(o.file, kindMeta, "%s: data[%q]: %s", o.where(), k, msg)
			}
		}
	}
}

func (v *validator) kustomization(o *object, k *kustomize.Kustomization) {
	dir := filepath.Dir(o.file)
	for i, r := range k.Resources {
		if strings.Contains(r, "://") || strings.HasPrefix(r, "github.com/") {
			continue // a remote base: not checkable here
		}
		p := filepath.Join(dir, r)
		st, err := os.Stat(p)
		if err != nil {
			v.add(o.file, kindKustomization, "resources[%d]: %q does not exist", i, r)
			continue
		}
		if st.IsDir() {
			sub := filepath.Join(p, "kustomization.yaml")
			if _, err := os.Stat(sub); err != nil {
				v.add(o.file, kindKustomization, "resources[%d]: directory %q has no kustomization.yaml", i, r)
				continue
			}
			v.load(sub)
			continue
		}
		v.load(p)
	}
	for i, g := range k.ConfigMapGenerator {
		for _, f := range g.FileSources {
			src := f
			if eq := strings.Index(f, "="); eq >= 0 {
				src = f[eq+1:]
			}
			if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
				v.add(o.file, kindKustomization, "configMapGenerator[%d].files: %q does not exist", i, f)
			}
		}
	}
}

// --- cross-object checks --------------------------------------------------------------------

func (v *validator) podOwners() []podOwner {
	var out []podOwner
	for _, o := range v.objects {
		tmpl := field.NewPath("spec", "template")
		switch w := o.obj.(type) {
		case *appsv1.Deployment:
			out = append(out, podOwner{o, w.Spec.Template.Labels, &w.Spec.Template.Spec, tmpl.Child("spec")})
		case *appsv1.StatefulSet:
			out = append(out, podOwner{o, w.Spec.Template.Labels, &w.Spec.Template.Spec, tmpl.Child("spec")})
		case *appsv1.DaemonSet:
			out = append(out, podOwner{o, w.Spec.Template.Labels, &w.Spec.Template.Spec, tmpl.Child("spec")})
		case *appsv1.ReplicaSet:
			out = append(out, podOwner{o, w.Spec.Template.Labels, &w.Spec.Template.Spec, tmpl.Child("spec")})
		case *batchv1.Job:
			out = append(out, podOwner{o, w.Spec.Template.Labels, &w.Spec.Template.Spec, tmpl.Child("spec")})
		case *corev1.Pod:
			out = append(out, podOwner{o, w.Labels, &w.Spec, field.NewPath("spec")})
		}
	}
	return out
}

func (v *validator) find(kind, namespace, name string) *object {
	for _, o := range v.objects {
		if o.gvk.Kind == kind && o.meta != nil && o.meta.Name == name && (clusterScoped[kind] || o.namespace() == namespace) {
			return o
		}
	}
	return nil
}

// selects: pods of the set in namespace matched by a selector (nil selector: none).
func (v *validator) selects(owners []podOwner, namespace string, sel labels.Selector) []podOwner {
	var out []podOwner
	for _, p := range owners {
		if p.o.namespace() == namespace && sel.Matches(labels.Set(p.labels)) {
			out = append(out, p)
		}
	}
	return out
}

func (v *validator) labelSelector(o *object, path string, ls *metav1.LabelSelector) (labels.Selector, bool) {
	if ls == nil {
		v.add(o.file, kindSelector, "%s: %s: a selector is required", o.where(), path)
		return nil, false
	}
	for _, e := range metav1validation.ValidateLabelSelector(ls, metav1validation.LabelSelectorValidationOptions{}, field.NewPath(path)) {
		v.add(o.file, kindMeta, "%s: %v", o.where(), e)
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		v.add(o.file, kindSelector, "%s: %s: %v", o.where(), path, err)
		return nil, false
	}
	return sel, true
}

func (v *validator) crossChecks() {
	owners := v.podOwners()
	for _, p := range owners {
		v.checkPod(p)
	}
	for _, o := range v.objects {
		switch w := o.obj.(type) {
		case *appsv1.Deployment:
			v.workloadSelector(o, w.Spec.Selector, w.Spec.Template.Labels)
		case *appsv1.StatefulSet:
			v.workloadSelector(o, w.Spec.Selector, w.Spec.Template.Labels)
		case *appsv1.DaemonSet:
			v.workloadSelector(o, w.Spec.Selector, w.Spec.Template.Labels)
		case *appsv1.ReplicaSet:
			v.workloadSelector(o, w.Spec.Selector, w.Spec.Template.Labels)
		case *corev1.Service:
			v.service(o, w, owners)
		case *policyv1.PodDisruptionBudget:
			v.pdb(o, w, owners)
		case *networkingv1.NetworkPolicy:
			v.networkPolicy(o, w, owners)
		case *autoscalingv2.HorizontalPodAutoscaler:
			v.hpa(o, w)
		}
	}
}

func (v *validator) workloadSelector(o *object, ls *metav1.LabelSelector, tmpl map[string]string) {
	sel, ok := v.labelSelector(o, "spec.selector", ls)
	if !ok {
		return
	}
	if sel.Empty() {
		v.add(o.file, kindSelector, "%s: spec.selector: empty (it would select every pod)", o.where())
		return
	}
	if !sel.Matches(labels.Set(tmpl)) {
		v.add(o.file, kindSelector, "%s: spec.selector %q does not match the pod template's labels %v", o.where(), sel.String(), tmpl)
	}
}

// containerPorts: named ports of a pod, by container.
func namedPorts(c *corev1.Container) map[string]bool {
	out := map[string]bool{}
	for _, p := range c.Ports {
		if p.Name != "" {
			out[p.Name] = true
		}
	}
	return out
}

func (v *validator) checkPod(p podOwner) {
	o := p.o
	volumes := map[string]*corev1.Volume{}
	for i := range p.spec.Volumes {
		vol := &p.spec.Volumes[i]
		if _, dup := volumes[vol.Name]; dup {
			v.add(o.file, kindMeta, "%s: %s: volume %q declared twice", o.where(), p.path.Child("volumes").Index(i), vol.Name)
		}
		volumes[vol.Name] = vol
		for _, msg := range validation.IsDNS1123Label(vol.Name) {
			v.add(o.file, kindMeta, "%s: %s: %s", o.where(), p.path.Child("volumes").Index(i).Child("name"), msg)
		}
		path := p.path.Child("volumes").Index(i)
		if cm := vol.ConfigMap; cm != nil {
			v.configMapRef(o, path.Child("configMap"), cm.Name, cm.Optional, keysOf(cm.Items))
		}
		if pr := vol.Projected; pr != nil {
			for j, s := range pr.Sources {
				if s.ConfigMap != nil {
					v.configMapRef(o, path.Child("projected", "sources").Index(j).Child("configMap"), s.ConfigMap.Name, s.ConfigMap.Optional, keysOf(s.ConfigMap.Items))
				}
			}
		}
	}
	if sa := p.spec.ServiceAccountName; sa != "" && sa != "default" && v.find("ServiceAccount", o.namespace(), sa) == nil {
		v.add(o.file, kindReference, "%s: %s: ServiceAccount %q is not in the set", o.where(), p.path.Child("serviceAccountName"), sa)
	}
	seen := map[string]bool{}
	portNames := map[string]bool{}
	type group struct {
		name string
		list []corev1.Container
	}
	for _, g := range []group{{"initContainers", p.spec.InitContainers}, {"containers", p.spec.Containers}} {
		for i := range g.list {
			c := &g.list[i]
			path := p.path.Child(g.name).Index(i)
			if seen[c.Name] {
				v.add(o.file, kindMeta, "%s: %s.name: container name %q used twice", o.where(), path, c.Name)
			}
			seen[c.Name] = true
			for _, msg := range validation.IsDNS1123Label(c.Name) {
				v.add(o.file, kindMeta, "%s: %s.name: %s", o.where(), path, msg)
			}
			if c.Image == "" {
				v.add(o.file, kindMeta, "%s: %s.image: required", o.where(), path)
			}
			for j, port := range c.Ports {
				pp := path.Child("ports").Index(j)
				for _, msg := range validation.IsValidPortNum(int(port.ContainerPort)) {
					v.add(o.file, kindPort, "%s: %s.containerPort: %s", o.where(), pp, msg)
				}
				if port.Name != "" {
					for _, msg := range validation.IsValidPortName(port.Name) {
						v.add(o.file, kindPort, "%s: %s.name: %s", o.where(), pp, msg)
					}
					if portNames[port.Name] {
						v.add(o.file, kindPort, "%s: %s.name: port name %q used twice in the pod", o.where(), pp, port.Name)
					}
					portNames[port.Name] = true
				}
			}
			for j, m := range c.VolumeMounts {
				if volumes[m.Name] == nil {
					v.add(o.file, kindReference, "%s: %s: volume %q is not declared in the pod's volumes", o.where(), path.Child("volumeMounts").Index(j), m.Name)
				}
			}
			for j, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
					r := e.ValueFrom.ConfigMapKeyRef
					v.configMapRef(o, path.Child("env").Index(j).Child("valueFrom", "configMapKeyRef"), r.Name, r.Optional, []string{r.Key})
				}
			}
			for j, e := range c.EnvFrom {
				if e.ConfigMapRef != nil {
					v.configMapRef(o, path.Child("envFrom").Index(j).Child("configMapRef"), e.ConfigMapRef.Name, e.ConfigMapRef.Optional, nil)
				}
			}
			named := namedPorts(c)
			probes := []struct {
				name  string
				probe *corev1.Probe
			}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}}
			for _, pr := range probes {
				if pr.probe != nil {
					v.probe(o, path.Child(pr.name), pr.probe, named)
				}
			}
		}
	}
}

func keysOf(items []corev1.KeyToPath) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.Key)
	}
	return out
}

func (v *validator) configMapRef(o *object, path *field.Path, name string, optional *bool, keys []string) {
	cm := v.find("ConfigMap", o.namespace(), name)
	if cm == nil {
		if optional == nil || !*optional {
			v.add(o.file, kindReference, "%s: %s: ConfigMap %q is not in the set", o.where(), path, name)
		}
		return
	}
	c := cm.obj.(*corev1.ConfigMap)
	for _, k := range keys {
		_, inData := c.Data[k]
		_, inBinary := c.BinaryData[k]
		if !inData && !inBinary {
			v.add(o.file, kindReference, "%s: %s: ConfigMap %q has no key %q", o.where(), path, name, k)
		}
	}
}

func (v *validator) probe(o *object, path *field.Path, probe *corev1.Probe, named map[string]bool) {
	check := func(p *field.Path, port intstr.IntOrString) {
		if port.Type == intstr.String {
			if !named[port.StrVal] {
				v.add(o.file, kindPort, "%s: %s: %q is not a named port of this container", o.where(), p, port.StrVal)
			}
			return
		}
		for _, msg := range validation.IsValidPortNum(int(port.IntVal)) {
			v.add(o.file, kindPort, "%s: %s: %s", o.where(), p, msg)
		}
	}
	handlers := 0
	if h := probe.HTTPGet; h != nil {
		handlers++
		check(path.Child("httpGet", "port"), h.Port)
		if !strings.HasPrefix(h.Path, "/") {
			v.add(o.file, kindMeta, "%s: %s: must start with /", o.where(), path.Child("httpGet", "path"))
		}
	}
	if t := probe.TCPSocket; t != nil {
		handlers++
		check(path.Child("tcpSocket", "port"), t.Port)
	}
	if g := probe.GRPC; g != nil {
		handlers++
		check(path.Child("grpc", "port"), intstr.FromInt32(g.Port))
	}
	if probe.Exec != nil {
		handlers++
	}
	if handlers != 1 {
		v.add(o.file, kindMeta, "%s: %s: exactly one of httpGet, tcpSocket, grpc, exec is required", o.where(), path)
	}
}

func (v *validator) service(o *object, s *corev1.Service, owners []podOwner) {
	if len(s.Spec.Selector) == 0 {
		return // endpoints managed outside (ExternalName, manual EndpointSlices)
	}
	pods := v.selects(owners, o.namespace(), labels.SelectorFromSet(s.Spec.Selector))
	if len(pods) == 0 {
		v.add(o.file, kindSelector, "%s: spec.selector %v selects no pod template of the set", o.where(), s.Spec.Selector)
		return
	}
	for i, port := range s.Spec.Ports {
		path := field.NewPath("spec", "ports").Index(i)
		for _, msg := range validation.IsValidPortNum(int(port.Port)) {
			v.add(o.file, kindPort, "%s: %s.port: %s", o.where(), path, msg)
		}
		if port.TargetPort.Type != intstr.String {
			continue
		}
		for _, p := range pods {
			found := false
			for j := range p.spec.Containers {
				if namedPorts(&p.spec.Containers[j])[port.TargetPort.StrVal] {
					found = true
				}
			}
			if !found {
				v.add(o.file, kindPort, "%s: %s.targetPort: %q is not a named port of %s", o.where(), path, port.TargetPort.StrVal, p.o.where())
			}
		}
	}
}

func (v *validator) pdb(o *object, p *policyv1.PodDisruptionBudget, owners []podOwner) {
	if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
		v.add(o.file, kindMeta, "%s: spec: exactly one of minAvailable and maxUnavailable is required", o.where())
	}
	sel, ok := v.labelSelector(o, "spec.selector", p.Spec.Selector)
	if ok && len(v.selects(owners, o.namespace(), sel)) == 0 {
		v.add(o.file, kindSelector, "%s: spec.selector %q selects no pod template of the set", o.where(), sel.String())
	}
}

func (v *validator) networkPolicy(o *object, n *networkingv1.NetworkPolicy, owners []podOwner) {
	sel, ok := v.labelSelector(o, "spec.podSelector", &n.Spec.PodSelector)
	if !ok {
		return
	}
	pods := v.selects(owners, o.namespace(), sel)
	if len(pods) == 0 {
		v.add(o.file, kindSelector, "%s: spec.podSelector %q selects no pod template of the set", o.where(), sel.String())
	}
	for i, rule := range n.Spec.Ingress {
		for j, port := range rule.Ports {
			path := field.NewPath("spec", "ingress").Index(i).Child("ports").Index(j).Child("port")
			if port.Port == nil {
				continue
			}
			if port.Port.Type == intstr.String {
				for _, p := range pods {
					found := false
					for k := range p.spec.Containers {
						if namedPorts(&p.spec.Containers[k])[port.Port.StrVal] {
							found = true
						}
					}
					if !found {
						v.add(o.file, kindPort, "%s: %s: %q is not a named port of %s", o.where(), path, port.Port.StrVal, p.o.where())
					}
				}
				continue
			}
			for _, msg := range validation.IsValidPortNum(int(port.Port.IntVal)) {
				v.add(o.file, kindPort, "%s: %s: %s", o.where(), path, msg)
			}
		}
		for j, peer := range rule.From {
			for _, ls := range []*metav1.LabelSelector{peer.PodSelector, peer.NamespaceSelector} {
				if ls != nil {
					v.labelSelector(o, field.NewPath("spec", "ingress").Index(i).Child("from").Index(j).String(), ls)
				}
			}
		}
	}
	for i, rule := range n.Spec.Egress {
		for j, port := range rule.Ports {
			if port.Port != nil && port.Port.Type == intstr.Int {
				for _, msg := range validation.IsValidPortNum(int(port.Port.IntVal)) {
					v.add(o.file, kindPort, "%s: %s: %s", o.where(), field.NewPath("spec", "egress").Index(i).Child("ports").Index(j).Child("port"), msg)
				}
			}
		}
	}
}

func (v *validator) hpa(o *object, h *autoscalingv2.HorizontalPodAutoscaler) {
	if h.Spec.MinReplicas != nil && *h.Spec.MinReplicas > h.Spec.MaxReplicas {
		v.add(o.file, kindMeta, "%s: spec.minReplicas %d is above spec.maxReplicas %d", o.where(), *h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	if h.Spec.MaxReplicas < 1 {
		v.add(o.file, kindMeta, "%s: spec.maxReplicas must be at least 1", o.where())
	}
	ref := h.Spec.ScaleTargetRef
	target := v.find(ref.Kind, o.namespace(), ref.Name)
	if target == nil || target.gvk.GroupVersion().String() != ref.APIVersion {
		v.add(o.file, kindReference, "%s: spec.scaleTargetRef: %s %s %q is not in the set", o.where(), ref.APIVersion, ref.Kind, ref.Name)
		return
	}
	var spec *corev1.PodSpec
	switch w := target.obj.(type) {
	case *appsv1.Deployment:
		spec = &w.Spec.Template.Spec
	case *appsv1.StatefulSet:
		spec = &w.Spec.Template.Spec
	case *appsv1.ReplicaSet:
		spec = &w.Spec.Template.Spec
	}
	if spec == nil {
		return
	}
	// The HPA computes utilization as usage / request, per container: a container without a
	// request for the resource makes the metric unavailable and the HPA does not scale.
	for i, m := range h.Spec.Metrics {
		var resource corev1.ResourceName
		var utilization bool
		var containers []corev1.Container
		switch {
		case m.Resource != nil:
			resource, utilization, containers = m.Resource.Name, m.Resource.Target.Type == autoscalingv2.UtilizationMetricType, spec.Containers
		case m.ContainerResource != nil:
			resource, utilization = m.ContainerResource.Name, m.ContainerResource.Target.Type == autoscalingv2.UtilizationMetricType
			for _, c := range spec.Containers {
				if c.Name == m.ContainerResource.Container {
					containers = append(containers, c)
				}
			}
			if len(containers) == 0 {
				v.add(o.file, kindReference, "%s: spec.metrics[%d].containerResource.container: %q is not a container of %s", o.where(), i, m.ContainerResource.Container, target.where())
			}
		}
		if !utilization {
			continue
		}
		for _, c := range containers {
			if _, ok := c.Resources.Requests[resource]; !ok {
				v.add(o.file, kindResources, "%s: spec.metrics[%d]: %s utilization needs a %s request on container %q of %s", o.where(), i, resource, resource, c.Name, target.where())
			}
		}
	}
}
