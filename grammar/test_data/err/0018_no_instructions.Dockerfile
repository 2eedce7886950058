# syntax=docker/dockerfile:1
# only comments

