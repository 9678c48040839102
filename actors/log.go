package actors

import (
	"context"
	"log/slog"

	"github.com/rs/zerolog"
)

// slogBridge forwards protoactor's log/slog output into zerolog. protoactor
// reports routine lifecycle at Info, so its levels move down one step: its
// Info is our Debug, its Debug our Trace.
type slogBridge struct {
	log   zerolog.Logger
	attrs []slog.Attr
}

func (b slogBridge) level(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	case l >= slog.LevelInfo:
		return zerolog.DebugLevel
	}
	return zerolog.TraceLevel
}

func (b slogBridge) Enabled(_ context.Context, l slog.Level) bool {
	return b.level(l) >= b.log.GetLevel() && b.level(l) >= zerolog.GlobalLevel()
}

func (b slogBridge) Handle(_ context.Context, r slog.Record) error {
	ev := b.log.WithLevel(b.level(r.Level))
	for _, a := range b.attrs {
		ev = ev.Any(a.Key, a.Value.Any())
	}
	r.Attrs(func(a slog.Attr) bool {
		ev = ev.Any(a.Key, a.Value.Any())
		return true
	})
	ev.Msg(r.Message)
	return nil
}

func (b slogBridge) WithAttrs(attrs []slog.Attr) slog.Handler {
	return slogBridge{log: b.log, attrs: append(append([]slog.Attr(nil), b.attrs...), attrs...)}
}

func (b slogBridge) WithGroup(string) slog.Handler { return b }
