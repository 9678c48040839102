// Command fastproxy is bareproxy written on fasthttp instead of net/http: it
// forwards each POST body to the upstream's /v1/chat/completions with a
// pooled fasthttp client and copies the answer back, no JSON, no routing.
// bench/gateway.sh measures it beside bareproxy to decide the HTTP stack by
// measurement (README, "Gateway in front of an OpenAI-compatible upstream").
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	upstream := flag.String("upstream", "", "upstream base URL, such as http://127.0.0.1:9000/v1")
	flag.Parse()
	if *upstream == "" {
		fmt.Fprintln(os.Stderr, "fastproxy: --upstream is required")
		os.Exit(2)
	}
	target := *upstream + "/chat/completions"
	client := &fasthttp.Client{MaxConnsPerHost: 1024, MaxIdleConnDuration: time.Minute}
	handler := func(ctx *fasthttp.RequestCtx) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(target)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentType("application/json")
		req.SetBody(ctx.PostBody())
		if err := client.Do(req, resp); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadGateway)
			return
		}
		ctx.SetStatusCode(resp.StatusCode())
		ctx.SetContentType("application/json")
		ctx.SetBody(resp.Body())
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	log.Fatal((&fasthttp.Server{Handler: handler, ReadTimeout: 30 * time.Second}).Serve(ln))
}
