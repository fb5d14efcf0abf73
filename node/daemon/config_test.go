package daemon

import (
	"strings"
	"testing"
)

func TestExampleConfig(t *testing.T) {
	c := Default()
	if err := LoadFile("../../docs/rfcd.example.json", &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("docs/rfcd.example.json: %v", err)
	}
	if c.Node != 2 || len(c.Roles) != 2 || c.Heartbeat.Interval.Milliseconds() != 200 || len(c.Registry.Services) != 1 {
		t.Fatalf("example read as %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct{ json, field string }{
		{`{"insecure": true, "addr": "x"}`, "addr"},
		{`{}`, "key_file"},
		{`{"insecure": true, "key_file": "k"}`, "insecure"},
		{`{"insecure": true, "log_level": "loud"}`, "log_level"},
		{`{"insecure": true, "roles": ["chef"]}`, "roles"},
		{`{"insecure": true, "roles": ["worker", "worker"], "heartbeat": {"members": ["127.0.0.1:1"]}}`, "roles"},
		{`{"insecure": true, "roles": ["master"]}`, "heartbeat.members"},
		{`{"insecure": true, "heartbeat": {"members": ["nope"]}}`, "heartbeat.members[0]"},
		{`{"insecure": true, "heartbeat": {"interval": "soon"}}`, "heartbeat.interval"},
		{`{"insecure": true, "roles": ["center"]}`, "center.data_dir"},
		{`{"insecure": true, "roles": ["center"], "center": {"data_dir": "d", "index": 2}}`, "center.index"},
		{`{"insecure": true, "roles": ["center"], "center": {"data_dir": "d", "fsync": "sometimes"}}`, "center.fsync"},
		{`{"insecure": true, "roles": ["center"], "center": {"data_dir": "d", "peer": "127.0.0.1:7001"}}`, "center.peer"},
		{`{"insecure": true, "roles": ["center"], "center": {"data_dir": "d", "peer": "127.0.0.1:7001"}, "heartbeat": {"members": ["127.0.0.1:7002"]}}`, "center.peer"},
		{`{"insecure": true, "addr": "127.0.0.1:7001", "roles": ["center"], "center": {"data_dir": "d", "peer": "127.0.0.1:7001"}, "heartbeat": {"members": ["127.0.0.1:7001"]}}`, "center.peer"},
		{`{"insecure": true, "roles": ["agent"], "registry": {"shm_file": "f"}}`, "registry.centers"},
		{`{"insecure": true, "roles": ["agent"], "registry": {"centers": ["127.0.0.1:1"]}}`, "registry.shm_file"},
		{`{"insecure": true, "engine": {"max_datagram": 70000}}`, "engine.max_datagram"},
		{`{"insecure": true, "engine": {"workers": "many"}}`, "engine.workers"},
		{`{"insecure": true, "colour": "blue"}`, "colour"},
		{`{"insecure": true, "roles": ["dispatcher"], "dispatcher": {"targets": ["x"]}}`, "dispatcher.targets[0]"},
	}
	for _, tc := range cases {
		c := Default()
		err := Load(strings.NewReader(tc.json), &c)
		if err == nil {
			err = c.Validate()
		}
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != tc.field {
			t.Errorf("%s: got %v, want an error naming %s", tc.json, err, tc.field)
		}
	}
}

// A center whose peer the heartbeat watches is accepted.
func TestCenterPeerWatched(t *testing.T) {
	c := Default()
	body := `{"insecure": true, "addr": "127.0.0.1:7000", "roles": ["center"], "center": {"data_dir": "d", "peer": "127.0.0.1:7001"}, "heartbeat": {"members": ["127.0.0.1:7001"]}}`
	if err := Load(strings.NewReader(body), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("watched peer refused: %v", err)
	}
}
