// Renders an Istio injection template as istiod does: Go's text/template with
// sprig's functions and Istio's own `annotation`, on the fields of Istio's
// template data that graceful-wait's template reads (names and types as in
// istio/istio pkg/kube/inject: ObjectMeta, Spec as a corev1.PodSpec, Values,
// NativeSidecars). A field the template reads that is not modelled here is an
// error, never an empty value.
//
// Usage: render TEMPLATE < cases.jsonl: one JSON object per line, the
// template data; each rendering is printed followed by a line "---END---".
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"text/template"

	"github.com/Masterminds/sprig" // Debian's golang-github-masterminds-sprig-dev (v3), GOPATH mode
)

type ObjectMeta struct {
	Name        string            `json:"name"`
	Annotations map[string]string `json:"annotations"`
	Labels      map[string]string `json:"labels"`
}

type PodSpec struct {
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds"`
	ShareProcessNamespace         *bool  `json:"shareProcessNamespace"`
}

type Data struct {
	ObjectMeta     ObjectMeta     `json:"ObjectMeta"`
	Spec           PodSpec        `json:"Spec"`
	Values         map[string]any `json:"Values"`
	NativeSidecars bool           `json:"NativeSidecars"`
}

// Istio's `annotation`: the annotation's value, else the default printed.
func annotation(meta ObjectMeta, name string, defaultValue any) string {
	value, ok := meta.Annotations[name]
	if !ok {
		value = fmt.Sprint(defaultValue)
	}
	return value
}

func main() {
	text, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	funcs := sprig.TxtFuncMap()
	funcs["annotation"] = annotation
	tmpl, err := template.New("graceful-wait").Funcs(funcs).Parse(string(text))
	if err != nil {
		fmt.Fprintln(os.Stderr, "parse:", err)
		os.Exit(1)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		var data Data
		if err := json.Unmarshal(in.Bytes(), &data); err != nil {
			fmt.Fprintln(os.Stderr, "data:", err)
			os.Exit(1)
		}
		if data.ObjectMeta.Annotations == nil {
			data.ObjectMeta.Annotations = map[string]string{}
		}
		if err := tmpl.Execute(out, data); err != nil {
			out.Flush()
			fmt.Fprintln(os.Stderr, "execute:", err)
			os.Exit(1)
		}
		fmt.Fprintln(out, "\n---END---")
	}
}
