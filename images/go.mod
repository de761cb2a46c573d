module switchyard.dev/images

go 1.24.0
