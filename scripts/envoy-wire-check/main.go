// Envoy's own generated types (go-control-plane) on one side of the wire, for
// scripts/envoy-wire-check.ts: prints a CheckRequest with every field set and two
// CheckResponses (hex, one per line); with `decode <hex>` prints a CheckResponse as protojson.

package main

import (
	"encoding/hex"
	"fmt"
	"os"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	auth "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "decode" {
		b, _ := hex.DecodeString(os.Args[2])
		var r auth.CheckResponse
		if err := proto.Unmarshal(b, &r); err != nil { panic(err) }
		fmt.Println(protojson.Format(&r))
		return
	}
	md, _ := structpb.NewStruct(map[string]any{"k": "v", "n": 1.5})
	req := &auth.CheckRequest{Attributes: &auth.AttributeContext{
		Source: &auth.AttributeContext_Peer{Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{Protocol: core.SocketAddress_UDP, Address: "10.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: 443}, ResolverName: "r", Ipv4Compat: true, NetworkNamespaceFilepath: "/ns"}}},
			Service: "svc", Labels: map[string]string{"l": "v"}, Principal: "spiffe://p", Certificate: "cert"},
		Destination: &auth.AttributeContext_Peer{Address: &core.Address{Address: &core.Address_Pipe{Pipe: &core.Pipe{Path: "/p", Mode: 0o600}}}},
		Request: &auth.AttributeContext_Request{Time: &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 7}, Http: &auth.AttributeContext_HttpRequest{
			Id: "id", Method: "POST", Headers: map[string]string{"h": "v"}, HeaderMap: &core.HeaderMap{Headers: []*core.HeaderValue{{Key: "k", Value: "v", RawValue: []byte("rv")}}},
			Path: "/p?q", Host: "host", Scheme: "https", Query: "q", Fragment: "f", Size: -1, Protocol: "HTTP/2", Body: "body", RawBody: []byte{0xff, 0}}},
		ContextExtensions: map[string]string{"c": "e"},
		MetadataContext: &core.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": md}},
		RouteMetadataContext: &core.Metadata{FilterMetadata: map[string]*structpb.Struct{"r": md}},
		TlsSession: &auth.AttributeContext_TLSSession{Sni: "sni"},
	}}
	b, err := proto.Marshal(req)
	if err != nil { panic(err) }
	fmt.Println(hex.EncodeToString(b))
	// a response with every field, for the other direction
	ok := &auth.CheckResponse{Status: &rpcstatus.Status{Code: 7, Message: "m"}, HttpResponse: &auth.CheckResponse_OkResponse{OkResponse: &auth.OkHttpResponse{
		Headers: []*core.HeaderValueOption{{Header: &core.HeaderValue{Key: "a", Value: "b"}, Append: wrapperspb.Bool(true), AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS, KeepEmptyValue: true}},
		HeadersToRemove: []string{"x"}, ResponseHeadersToAdd: []*core.HeaderValueOption{{Header: &core.HeaderValue{Key: "c", Value: "d"}}},
		QueryParametersToSet: []*core.QueryParameter{{Key: "q", Value: "1"}}, QueryParametersToRemove: []string{"r"}}}, DynamicMetadata: md}
	b2, _ := proto.Marshal(ok)
	fmt.Println(hex.EncodeToString(b2))
	den := &auth.CheckResponse{HttpResponse: &auth.CheckResponse_ErrorResponse{ErrorResponse: &auth.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}, Body: "e", Headers: []*core.HeaderValueOption{{Header: &core.HeaderValue{Key: "a", Value: "b"}}}}}}
	b3, _ := proto.Marshal(den)
	fmt.Println(hex.EncodeToString(b3))
}
