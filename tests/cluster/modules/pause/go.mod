module graceful-wait.test/cluster/pause

go 1.26.0
