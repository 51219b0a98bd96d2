package wsconn

import (
	"strings"
	"testing"

	"github.com/coder/websocket"
)

var controlCases = []struct {
	typ  websocket.MessageType
	data string
	ok   bool
	want string
}{
	{websocket.MessageText, `{"type":"tokend.renew","token":"abc"}`, true, TypeRenew},
	{websocket.MessageText, ` {"type":"tokend.renewed","exp":5}`, true, TypeRenewed},
	{websocket.MessageText, `{"type":"tokend.renew","token":`, true, "tokend.malformed"},
	{websocket.MessageText, `{"type":"chat","text":"tokend.renew"}`, false, ""},
	{websocket.MessageText, `hello`, false, ""},
	{websocket.MessageText, `{"type":"tokend.renew","type":"chat"}`, true, "tokend.malformed"},
	{websocket.MessageBinary, `{"type":"tokend.renew","token":"abc"}`, false, ""},
}

func TestParseControl(t *testing.T) {
	for _, tc := range controlCases {
		c, ok := parseControl(tc.typ, []byte(tc.data))
		if ok != tc.ok || c.Type != tc.want {
			t.Errorf("parseControl(%q) = %+v, %v; want %q, %v", tc.data, c, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseControl(f *testing.F) {
	for _, tc := range controlCases {
		f.Add(tc.data)
	}
	f.Fuzz(func(t *testing.T, data string) {
		c, ok := parseControl(websocket.MessageText, []byte(data))
		if ok && !strings.HasPrefix(c.Type, "tokend.") {
			t.Fatalf("control message without a tokend type: %+v", c)
		}
	})
}
