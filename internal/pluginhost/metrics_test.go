package pluginhost

import "sync"

// restarts is a Metrics that counts restarts by plugin.
type restarts struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *restarts) PluginRestarted(plugin string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[plugin]++
}

func (r *restarts) of(plugin string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[plugin]
}
