package actors

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// env is what every actor of a Hive shares: configuration and the ports.
// It is read-only after New, except wg, which counts goroutines.
type env struct {
	cfg      *Config
	log      zerolog.Logger
	now      func() time.Time
	random   func() float64
	pub      Publisher
	store    StateStore
	wg       *sync.WaitGroup
	system   *actor.ActorSystem
	router   *actor.PID
	recovery *actor.PID
	alerts   *actor.PID // nil when alerts are off
}
