package feed

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	now := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	for _, f := range []string{"hostile.xml"} {
		fh, _ := os.Open("testdata/" + f)
		res, err := Parse(fh, "", now)
		fh.Close()
		b, _ := json.MarshalIndent(res, "", " ")
		fmt.Println("=====", f, err)
		fmt.Println(string(b))
	}
}
