package main

import (
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func protojsonUnmarshal(b []byte, m proto.Message) error { return protojson.Unmarshal(b, m) }

// timeAfter is time.After, named so tests read as waits with a limit.
func timeAfter(d time.Duration) <-chan time.Time { return time.After(d) }
