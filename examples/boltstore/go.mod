module github.com/flowfabric/flowfabric-go/examples/boltstore

go 1.26.0

require (
	github.com/flowfabric/flowfabric-go v0.0.0
	go.etcd.io/bbolt v1.4.3
)

require golang.org/x/sys v0.49.0 // indirect

replace github.com/flowfabric/flowfabric-go => ../..
