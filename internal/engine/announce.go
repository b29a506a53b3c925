package engine

import (
	"context"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// announceEvery is how often a node tells the fleet it is alive: a third of queue.NodeTTL,
// so that a node is listed as alive through two lost announcements.
const announceEvery = queue.NodeTTL / 3

// announcer tells the fleet, through Redis, that this node is alive and what it runs, until
// ctx ends; then it takes the node off the list. A failed announcement is not logged: the
// other loops report an outage of Redis, once.
func (e *Engine) announcer(ctx context.Context) {
	n := queue.Node{
		Name: e.cfg.Node, Version: e.cfg.Version, JobSetHash: config.SetHash(e.cfg.Jobs),
		Jobs: len(e.cfg.Jobs), Started: e.clock.node().UTC(),
	}
	t := time.NewTicker(announceEvery)
	defer t.Stop()
	for {
		if err := e.agenda.Announce(ctx, n); err != nil && ctx.Err() == nil {
			e.log.Debug("announcing the node failed", "err", err)
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.agenda.CallTimeout())
			defer cancel()
			if err := e.agenda.Depart(dctx, e.cfg.Node); err != nil {
				e.log.Debug("taking the node off the fleet's list failed", "err", err)
			}
			return
		case <-t.C:
		}
	}
}
