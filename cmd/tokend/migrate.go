package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// newMigrateCmd is `tokend migrate`: bring the store's schema up to this
// tokend's, as serve does when it starts, and check the store answers.
// Stores migrate in one transaction (SQLite) or under a lock (PostgreSQL)
// so that instances starting together migrate once. It creates the
// PostgreSQL schema the URL's search_path names first if it is missing,
// and writes a Redis prefix's schema key; it creates a missing SQLite file
// only with --init.
func newMigrateCmd(cio *cmdIO) *cobra.Command {
	c := &cobra.Command{
		Use:   "migrate",
		Short: "create or bring the store's schema up to this tokend's (serve does it too when it starts)",
		Args:  noArgs,
	}
	sf := addStoreFlags(c.Flags(), "encryption-")
	sf.migrate = true
	c.RunE = func(cmd *cobra.Command, args []string) error {
		st, err := sf.openRaw(cmd.Context(), cio.stderr) // opening migrates
		if err != nil {
			return err
		}
		defer st.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
		defer cancel()
		if err := st.Ping(ctx); err != nil {
			return fmt.Errorf("the migrated store does not answer: %w", err)
		}
		fmt.Fprintln(cio.stdout, "the store's schema is this tokend's")
		return nil
	}
	return c
}
