// envoy-validate checks Envoy v3 bootstrap files against Envoy's own API, for machines where
// Envoy itself cannot be installed (Portcullis CI validates examples/envoy/*.yaml with it).
//
//	envoy-validate examples/envoy/envoy-grpc.yaml examples/envoy/envoy-http.yaml
//
// For each file it does what Envoy does when it loads a bootstrap, as far as the API allows
// without Envoy's C++ code:
//
//  1. YAML -> JSON -> envoy.config.bootstrap.v3.Bootstrap with protojson, strictly: an unknown
//     field, a wrong type or an unresolvable `@type` is an error (Envoy also rejects unknown
//     fields when it loads a static bootstrap).
//  2. The protoc-gen-validate rules generated into go-control-plane (ValidateAll): required
//     fields, lengths, ranges, enum values, ... — the same rules Envoy's C++ MessageUtil::validate
//     checks.
//  3. Every google.protobuf.Any inside (typed_config, typed_extension_protocol_options, ...) is
//     unpacked, decoded and validated the same way, recursively. ValidateAll does not look into
//     an Any, and Envoy picks extensions by the type URL of their typed config.
//  4. A few load-time checks Envoy makes outside the validation rules: an extension config sits
//     where its kind belongs (HTTP filter vs network filter vs transport socket), a
//     typed_extension_protocol_options key names its value's type, the router is the last HTTP
//     filter and only last, referenced clusters exist, a gRPC cluster speaks HTTP/2, and no
//     deprecated field or enum value is used.
//
// Exit status: 0 when every file is valid, 1 when any is not, 2 on usage errors. Each problem
// is one line on stderr: "<file>: <KIND>: <where>: <what>", KIND one of the constants below.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// Extension configs the examples use, imported so that their type URLs resolve (Envoy
	// links them in; a config naming an extension not imported here fails as unresolvable).
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// validator is the interface protoc-gen-validate generates on every message.
type validator interface{ ValidateAll() error }

const (
	routerType      = "envoy.extensions.filters.http.router.v3.Router"
	httpFilterField = "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter.typed_config"
	hcmType         = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)

// placement: where an extension's typed config may appear, by the field holding the Any.
// Envoy finds the factory by the config's type URL within the category of the field, so a
// config of the wrong category is rejected at load ("Didn't find a registered implementation").
var placement = map[string]string{
	httpFilterField: "envoy.extensions.filters.http.",
	"envoy.config.listener.v3.Filter.typed_config":                     "envoy.extensions.filters.network.",
	"envoy.config.listener.v3.ListenerFilter.typed_config":             "envoy.extensions.filters.listener.",
	"envoy.config.core.v3.TransportSocket.typed_config":                "envoy.extensions.transport_sockets.",
	"envoy.config.accesslog.v3.AccessLog.typed_config":                 "envoy.extensions.access_loggers.",
	"envoy.config.cluster.v3.Cluster.typed_extension_protocol_options": "envoy.extensions.upstreams.",
}

type checker struct {
	problems []string
	clusters map[string]*clusterv3.Cluster
	// cluster references found while walking: name -> where, and which must speak HTTP/2
	references map[string][]string
	grpc       map[string][]string
}

// Problem kinds, printed before each message so that callers (and tests) can tell what
// failed without reading the text.
const (
	kindRead        = "READ"         // the file cannot be read
	kindYAML        = "YAML"         // not YAML
	kindDecode      = "DECODE"       // not a Bootstrap: unknown field, wrong type, unresolvable @type
	kindValidate    = "VALIDATE"     // a protoc-gen-validate rule (required, range, length, enum, ...)
	kindExtension   = "EXTENSION"    // a typed config of the wrong kind for where it sits
	kindFilterOrder = "FILTER_ORDER" // the router is not (only) the last HTTP filter
	kindCluster     = "CLUSTER"      // undefined, duplicate, or (for gRPC) non-HTTP/2 cluster
	kindDeprecated  = "DEPRECATED"   // a deprecated field or enum value
)

func (c *checker) add(kind, format string, args ...any) {
	c.problems = append(c.problems, kind+": "+fmt.Sprintf(format, args...))
}

func main() {
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprintln(os.Stderr, "usage: envoy-validate bootstrap.yaml [more.yaml ...]")
		os.Exit(2)
	}
	failed := false
	for _, file := range os.Args[1:] {
		problems := validateFile(file)
		if len(problems) == 0 {
			fmt.Printf("%s: valid envoy.config.bootstrap.v3.Bootstrap\n", file)
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

func validateFile(file string) []string {
	raw, err := os.ReadFile(file)
	if err != nil {
		return []string{kindRead + ": " + err.Error()}
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return []string{kindYAML + ": " + err.Error()}
	}
	var bootstrap bootstrapv3.Bootstrap
	strict := protojson.UnmarshalOptions{DiscardUnknown: false, Resolver: protoregistry.GlobalTypes}
	if err := strict.Unmarshal(js, &bootstrap); err != nil {
		return []string{kindDecode + ": not an envoy.config.bootstrap.v3.Bootstrap: " + err.Error()}
	}
	c := &checker{clusters: map[string]*clusterv3.Cluster{}, references: map[string][]string{}, grpc: map[string][]string{}}
	for _, cl := range bootstrap.GetStaticResources().GetClusters() {
		if _, dup := c.clusters[cl.GetName()]; dup {
			c.add(kindCluster, "static_resources.clusters: cluster name %q used twice", cl.GetName())
		}
		c.clusters[cl.GetName()] = cl
	}
	c.message("", bootstrap.ProtoReflect())
	c.checkReferences()
	return c.problems
}

// message validates one message and everything below it. path is a readable location
// ("static_resources.listeners[0].filter_chains[0]...") for the messages.
func (c *checker) message(path string, m protoreflect.Message) {
	// The root and each unpacked Any are validated as a whole; ValidateAll recurses into
	// ordinary sub-messages itself but never into an Any.
	if v, ok := m.Interface().(validator); ok && (path == "" || isAnyTarget(path)) {
		where := path
		if where == "" {
			where = "bootstrap"
		}
		c.validate(where, v)
	}
	c.shapeChecks(path, m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		field := join(path, string(fd.Name())) // snake_case, as the YAML spells it
		c.deprecation(field, fd, v)
		switch {
		case fd.IsList():
			list := v.List()
			for i := 0; i < list.Len(); i++ {
				c.value(fmt.Sprintf("%s[%d]", field, i), fd, list.Get(i), "")
			}
		case fd.IsMap():
			keys := []string{}
			values := map[string]protoreflect.Value{}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				keys = append(keys, k.String())
				values[k.String()] = mv
				return true
			})
			sort.Strings(keys)
			for _, k := range keys {
				c.value(fmt.Sprintf("%s[%q]", field, k), fd.MapValue(), values[k], k)
			}
		default:
			c.value(field, fd, v, "")
		}
		return true
	})
}

// isAnyTarget marks paths that end in an unpacked Any (see value), whose content ValidateAll
// of the enclosing message never saw.
func isAnyTarget(path string) bool { return strings.HasSuffix(path, "<any>") }

func (c *checker) value(path string, fd protoreflect.FieldDescriptor, v protoreflect.Value, mapKey string) {
	if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
		return
	}
	m := v.Message()
	if m.Descriptor().FullName() != "google.protobuf.Any" {
		c.message(path, m)
		return
	}
	a := m.Interface().(*anypb.Any)
	inner, err := a.UnmarshalNew()
	if err != nil {
		c.add(kindDecode, "%s: typed config %q cannot be decoded: %v", path, a.GetTypeUrl(), err)
		return
	}
	typeName := string(inner.ProtoReflect().Descriptor().FullName())
	holder := string(fd.FullName())
	if fd.ContainingMessage().IsMapEntry() {
		holder = mapHolder(fd)
	}
	if prefix := placement[holder]; prefix != "" && !strings.HasPrefix(typeName, prefix) {
		c.add(kindExtension, "%s: %s is not a %s* extension config, Envoy would not find it there", trimAny(path), typeName, prefix)
	}
	if holder == "envoy.config.core.v3.TransportSocket.typed_config" {
		// a listener terminates TLS (downstream), a cluster originates it (upstream)
		if strings.HasPrefix(path, "static_resources.listeners") && strings.HasSuffix(typeName, ".UpstreamTlsContext") {
			c.add(kindExtension, "%s: a listener's transport socket needs a DownstreamTlsContext, not %s", trimAny(path), typeName)
		}
		if strings.HasPrefix(path, "static_resources.clusters") && strings.HasSuffix(typeName, ".DownstreamTlsContext") {
			c.add(kindExtension, "%s: a cluster's transport socket needs an UpstreamTlsContext, not %s", trimAny(path), typeName)
		}
	}
	if holder == "envoy.config.cluster.v3.Cluster.typed_extension_protocol_options" && mapKey != typeName {
		c.add(kindExtension, "%s: key must name the options' type %q (Envoy looks the extension up by this key)", trimAny(path), typeName)
	}
	c.message(path+"<any>", inner.ProtoReflect())
}

// mapHolder names the map field a map value belongs to: the map entry message is nested in
// the message that declares the field.
func mapHolder(fd protoreflect.FieldDescriptor) string {
	entry := fd.Parent().(protoreflect.MessageDescriptor)
	owner := entry.Parent().(protoreflect.MessageDescriptor)
	for i := 0; i < owner.Fields().Len(); i++ {
		f := owner.Fields().Get(i)
		if f.IsMap() && f.MapValue() == fd {
			return string(f.FullName())
		}
	}
	return string(entry.FullName())
}

func (c *checker) validate(path string, v validator) {
	err := v.ValidateAll()
	if err == nil {
		return
	}
	// ValidateAll returns a multi-error; list each violation on its own line
	var multi interface{ AllErrors() []error }
	if errors.As(err, &multi) {
		for _, e := range multi.AllErrors() {
			c.add(kindValidate, "%s: %v", trimAny(path), e)
		}
		return
	}
	c.add(kindValidate, "%s: %v", trimAny(path), err)
}

// shapeChecks: load-time rules of Envoy that are not in the validation annotations.
func (c *checker) shapeChecks(path string, m protoreflect.Message) {
	switch m.Descriptor().FullName() {
	case hcmType:
		filters := m.Descriptor().Fields().ByName("http_filters")
		list := m.Get(filters).List()
		for i := 0; i < list.Len(); i++ {
			f := list.Get(i).Message()
			cfg := f.Get(f.Descriptor().Fields().ByName("typed_config")).Message().Interface().(*anypb.Any)
			isRouter := strings.HasSuffix(cfg.GetTypeUrl(), "/"+routerType)
			name := f.Get(f.Descriptor().Fields().ByName("name")).String()
			if isRouter && i != list.Len()-1 {
				c.add(kindFilterOrder, "%s.http_filters[%d]: terminal filter %q must be the last HTTP filter", trimAny(path), i, name)
			}
			if !isRouter && i == list.Len()-1 {
				c.add(kindFilterOrder, "%s.http_filters[%d]: non-terminal filter %q is the last HTTP filter (the router must end the chain)", trimAny(path), i, name)
			}
		}
	case "envoy.config.route.v3.RouteAction":
		if name := m.Get(m.Descriptor().Fields().ByName("cluster")).String(); name != "" {
			c.references[name] = append(c.references[name], trimAny(path)+".cluster")
		}
	case "envoy.config.core.v3.HttpUri":
		if name := m.Get(m.Descriptor().Fields().ByName("cluster")).String(); name != "" {
			c.references[name] = append(c.references[name], trimAny(path)+".cluster")
		}
	case "envoy.config.core.v3.GrpcService.EnvoyGrpc":
		if name := m.Get(m.Descriptor().Fields().ByName("cluster_name")).String(); name != "" {
			c.references[name] = append(c.references[name], trimAny(path)+".cluster_name")
			c.grpc[name] = append(c.grpc[name], trimAny(path)+".cluster_name")
		}
	}
}

func (c *checker) checkReferences() {
	names := make([]string, 0, len(c.references))
	for n := range c.references {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := c.clusters[name]; !ok {
			for _, where := range c.references[name] {
				c.add(kindCluster, "%s: cluster %q is not defined in static_resources.clusters", where, name)
			}
		}
	}
	grpcNames := make([]string, 0, len(c.grpc))
	for n := range c.grpc {
		grpcNames = append(grpcNames, n)
	}
	sort.Strings(grpcNames)
	for _, name := range grpcNames {
		where := c.grpc[name]
		cl, ok := c.clusters[name]
		if ok && !speaksHTTP2(cl) {
			c.add(kindCluster, "%s: gRPC cluster %q must be configured for HTTP/2 (typed_extension_protocol_options %s with http2_protocol_options)", where[0], name, "envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
		}
	}
}

func speaksHTTP2(cl *clusterv3.Cluster) bool {
	opts, ok := cl.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if !ok {
		return false
	}
	inner, err := opts.UnmarshalNew()
	if err != nil {
		return false
	}
	m := inner.ProtoReflect()
	explicit := m.Descriptor().Fields().ByName("explicit_http_config")
	if !m.Has(explicit) {
		return false
	}
	e := m.Get(explicit).Message()
	return e.Has(e.Descriptor().Fields().ByName("http2_protocol_options"))
}

// deprecation: Envoy warns about deprecated fields and refuses those deprecated long enough
// ("disallowed by default"); examples must not teach either.
func (c *checker) deprecation(path string, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts.GetDeprecated() {
		c.add(kindDeprecated, "%s: field %s is deprecated", trimAny(path), fd.FullName())
	}
	if fd.Kind() != protoreflect.EnumKind || fd.IsMap() {
		return
	}
	values := []protoreflect.EnumNumber{}
	if fd.IsList() {
		for i := 0; i < v.List().Len(); i++ {
			values = append(values, v.List().Get(i).Enum())
		}
	} else {
		values = append(values, v.Enum())
	}
	for _, n := range values {
		ev := fd.Enum().Values().ByNumber(n)
		if ev == nil {
			continue
		}
		if opts, ok := ev.Options().(*descriptorpb.EnumValueOptions); ok && opts.GetDeprecated() {
			c.add(kindDeprecated, "%s: enum value %s is deprecated", trimAny(path), ev.FullName())
		}
	}
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func trimAny(path string) string { return strings.ReplaceAll(path, "<any>", "") }
