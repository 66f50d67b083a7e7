// Reads a YAML stream on stdin with go-yaml v2 (gopkg.in/yaml.v2, which
// sigs.k8s.io/yaml and so kubectl use) and prints each document as one JSON
// line — strings as strings, null as null, numbers and booleans as
// {"typed": ""}, mapping keys as their text — or "ERROR <message>" where
// reading stops: the shape graceful_inject::fuzzing::go_yaml_view prints.
// Built offline in GOPATH mode against Debian's golang-gopkg-yaml.v2-dev.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v2"
)

func main() {
	d := yaml.NewDecoder(os.Stdin)
	for {
		var v interface{}
		err := d.Decode(&v)
		if err == io.EOF {
			return
		}
		if err != nil {
			fmt.Printf("ERROR %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			return
		}
		// As serde_json writes it: <, > and & as they are.
		var b strings.Builder
		e := json.NewEncoder(&b)
		e.SetEscapeHTML(false)
		e.Encode(conv(v))
		fmt.Print(b.String())
	}
}

func conv(v interface{}) interface{} {
	switch x := v.(type) {
	case map[interface{}]interface{}:
		m := map[string]interface{}{}
		for k, val := range x {
			m[fmt.Sprint(k)] = conv(val)
		}
		return m
	case []interface{}:
		for i := range x {
			x[i] = conv(x[i])
		}
		return x
	case string:
		return x
	case nil:
		return nil
	default:
		// Numbers and booleans: their class, not their Go text.
		return map[string]string{"typed": ""}
	}
}
