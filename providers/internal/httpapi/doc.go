// Package httpapi is the HTTP plumbing that the providers for upstream HTTP
// APIs (openai, anthropic) share, so that each of them keeps only what its
// API defines: the request body, the headers that carry its credential, and
// the parsing of its answer and of its stream events.
//
// An Endpoint makes the calls: it POSTs a JSON body, classifies a refused
// connection or a non-2xx answer into a *providers.Error with the
// credentials removed, and reads a plain answer whole (Answer) or opens an
// event stream (Stream). A Stream owns what a streamed answer holds on to:
// the response body, its sse.Reader, the call's cancel func and whether the
// answer ended complete, so that Close can drain the body and hand the
// connection back to the pool. A backend's stream embeds *Stream and
// supplies its own event parser to Recv.
//
// It is internal to providers: the backends share it, nothing else needs it.
package httpapi
