package console

import "html/template"

// pageNames are the templates of templates/, each with the layout.
var pageNames = []string{"login", "status", "overview", "suspended", "execution", "cancel", "keys"}

// parseTemplates parses each page with the layout. A template that does
// not parse is a programming error: it panics.
func parseTemplates(funcs template.FuncMap) map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t := template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
		out[name] = t
	}
	return out
}
