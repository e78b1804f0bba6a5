module github.com/flowfabric/flowfabric-go/examples/boltstore

go 1.26.0

require (
	github.com/flowfabric/flowfabric-go v0.0.0
	go.etcd.io/bbolt v1.4.3
)

require (
	github.com/stretchr/testify v1.12.1 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/flowfabric/flowfabric-go => ../..
