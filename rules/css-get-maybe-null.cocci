// css_get() on the result of a lookup that can return NULL, without a NULL check.
// Confidence: moderate. False positives: the lookup is known not to fail here.
virtual report

@r depends on report@
expression M, E;
identifier F =~ "^(mem_cgroup_from_task|mem_cgroup_from_css|mem_cgroup_from_id|css_from_id|task_get_css|mem_cgroup_from_obj)$";
position p;
@@
M = F(...);
... when != M == NULL
    when != M != NULL
    when != !M
    when != if (M) { ... }
    when != M = E
css_get@p(&M->css);

@script:python depends on r@
p << r.p;
@@
print("%s:%s: css_get() on a pointer that can be NULL (no check since the lookup)" % (p[0].file, p[0].line))
