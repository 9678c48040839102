package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/node"
)

func serve(args []string, stderr io.Writer) error {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		return usageError{err.Error()}
	}
	cfg, err := loadConfig(f, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	n, err := node.Start(ctx, nodeConfig(f, cfg, log), log)
	if errors.Is(err, node.ErrConfig) {
		return usageError{err.Error()}
	}
	if err != nil {
		return err
	}
	<-ctx.Done()
	stop() // a second signal kills the process at once
	return n.Stop()
}

// nodeConfig is the node the flags and the files describe.
func nodeConfig(f *serveFlags, cfg *config.Config, log zerolog.Logger) node.Config {
	return node.Config{
		Files:         cfg,
		ID:            f.nodeID,
		Version:       version,
		NATS:          f.natsFlags.options("hive-node "+f.nodeID, log),
		Listen:        f.natsListen,
		DataDir:       f.dataDir,
		HTTPAddr:      f.httpAddr,
		PprofAddr:     f.pprofAddr,
		ShutdownGrace: f.shutdownGrace,
		AdminToken:    adminToken(log),
	}
}

// loadConfig reads --config-dir, falling back to the built-in defaults when
// the default directory does not exist.
func loadConfig(f *serveFlags, log zerolog.Logger) (*config.Config, error) {
	if !f.configDirSet {
		if _, err := os.Stat(filepath.Join(f.configDir, config.ModelsFile)); errors.Is(err, os.ErrNotExist) {
			log.Info().Msg("no ./config directory: using the built-in default configuration")
			return config.Defaults()
		}
	}
	return config.Load(f.configDir)
}
