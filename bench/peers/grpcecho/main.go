// Command grpcecho measures gRPC-go unary calls on the shapes of fcbench's
// calls case: an echo of a payload, sequential and 32 concurrent callers,
// 64 B and 1 KiB, warm-up then -d per round, -rounds rounds. Server and
// client run in this process on loopback, one shared client connection
// (gRPC's intended use). No generated code: the service is registered by
// hand with a grpc.ServiceDesc and the messages are raw bytes carried by a
// pass-through codec.
//
// It prints one JSON object on stdout: {"results": [...]} with, per shape,
// the fields of bench.CallResult and a downsampled latency distribution.
//
//	go run ./grpcecho -d 2s -warmup 500ms -rounds 3
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"fastcall/bench"
)

// rawCodec passes *[]byte messages through unchanged.
type rawCodec struct{}

func (rawCodec) Name() string { return "raw" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

// echoServer is the service implementation; the desc names its one method.
type echoServer interface{ Echo([]byte) []byte }

type echo struct{}

func (echo) Echo(b []byte) []byte { return b }

func echoHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	out := srv.(echoServer).Echo(in)
	return &out, nil
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "fcbench.Echo",
	HandlerType: (*echoServer)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Echo", Handler: echoHandler}},
}

// chartPoints is how many latency quantiles each result carries for charts.
const chartPoints = 2001

// output is one shape's result with its downsampled latency distribution.
type output struct {
	bench.CallResult
	Latencies []time.Duration `json:"latencies"`
}

func main() {
	dur := flag.Duration("d", 2*time.Second, "measured time per round")
	warm := flag.Duration("warmup", 500*time.Millisecond, "warm-up before each round")
	rounds := flag.Int("rounds", 3, "rounds per shape")
	flag.Parse()
	if err := run(bench.Options{Warmup: *warm, Duration: *dur, Rounds: *rounds}); err != nil {
		fmt.Fprintln(os.Stderr, "grpcecho:", err)
		os.Exit(1)
	}
}

func run(o bench.Options) error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	srv.RegisterService(&echoDesc, echo{})
	go srv.Serve(ln)
	defer srv.Stop()
	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		return err
	}
	defer conn.Close()
	var res []output
	for _, sh := range bench.CallShapes {
		payload := make([]byte, sh.Size)
		replies := make([][]byte, sh.Callers)
		ctx := context.Background()
		call := func(w int) bool {
			err := conn.Invoke(ctx, "/fcbench.Echo/Echo", &payload, &replies[w])
			return err == nil && len(replies[w]) == sh.Size
		}
		var ss []bench.Sample
		for r := 0; r < o.Rounds; r++ {
			s := bench.Drive(sh.Callers, o.Warmup, o.Duration, call)
			fmt.Fprintf(os.Stderr, "gRPC %d callers %d B round %d: %.0f calls/s, p50 %v\n",
				sh.Callers, sh.Size, r+1, s.Throughput, s.Percentile(0.5))
			ss = append(ss, s)
		}
		cr := bench.Summarize("gRPC-go unary", sh, ss)
		res = append(res, output{CallResult: cr, Latencies: bench.Downsample(cr.Latencies, chartPoints)})
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"results": res})
}
