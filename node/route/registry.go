package route

import (
	"context"
	"strings"
	"time"

	"fastcall/node/registry/client"
	"fastcall/node/registry/sdk"
	"fastcall/wire"
)

// RegistryMounts keeps the mount table in the registry's key/value store,
// so that every router sees the same table and follows its changes by
// subscription. Keys are full registry keys ("kv/route/..."); the client's
// KV calls take them without the "kv/" namespace prefix.
//
// The registry allows one watching client per endpoint: give a router node
// its own endpoint's client and no registry agent.
type RegistryMounts struct {
	C *client.Client
}

const kvNamespace = "kv/"

// List returns every entry under prefix (none, and no error, when the
// registry holds none). Every error of the listing is returned: the
// router does not start on a table it could not read.
func (r RegistryMounts) List(ctx context.Context, prefix string) ([]KV, error) {
	p := strings.TrimPrefix(prefix, kvNamespace)
	es, err := r.C.ListAll(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]KV, 0, len(es))
	for _, e := range es {
		out = append(out, KV{Key: kvNamespace + e.Key, Value: e.Value})
	}
	return out, nil
}

// Watch follows changes under prefix.
func (r RegistryMounts) Watch(prefix string, fn func(key string, value []byte, deleted bool)) (func(), error) {
	w, err := r.C.Watch([]string{prefix}, func(c client.Change) {
		if c.Deleted || c.Record == nil {
			fn(c.Key, nil, true)
			return
		}
		var rec sdk.Record
		if sdk.ParseRecord(c.Record, &rec) != wire.OK {
			return
		}
		fn(c.Key, append([]byte(nil), rec.Body...), false)
	})
	if err != nil {
		return nil, err
	}
	// The watch reports a deletion only for a key it has seen. Wait for
	// its first listing, so that every key the router reads with List
	// afterwards is one the watch knows.
	for end := time.Now().Add(watchSyncWait); !w.Synced() && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	if !w.Synced() {
		w.Close()
		return nil, wire.ETIMEDOUT
	}
	return w.Close, nil
}

// watchSyncWait bounds the wait for a new watch's first listing.
const watchSyncWait = 5 * time.Second

// Put writes key.
func (r RegistryMounts) Put(ctx context.Context, key string, value []byte) error {
	_, err := r.C.Put(ctx, strings.TrimPrefix(key, kvNamespace), value, 0)
	return err
}

// Delete removes key.
func (r RegistryMounts) Delete(ctx context.Context, key string) error {
	return r.C.Delete(ctx, strings.TrimPrefix(key, kvNamespace), 0)
}
