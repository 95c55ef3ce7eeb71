# syntax=docker/dockerfile:1
# Build:  docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t taskmanager .
# Run:    docker run -p 8000:8000 -e DATABASE_URL=... -e JWT_SIGNING_KEY=... taskmanager
#         docker run --rm -e DATABASE_URL=... taskmanager migrate
# The SQL migrations are embedded in the binary; the image holds nothing else.

FROM golang:1.26-bookworm AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /taskmanager ./cmd/taskmanager

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /taskmanager /taskmanager
USER nonroot:nonroot
EXPOSE 8000
ENTRYPOINT ["/taskmanager"]
CMD ["serve"]
