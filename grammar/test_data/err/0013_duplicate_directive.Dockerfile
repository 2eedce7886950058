# syntax=a
# syntax=b
FROM x
